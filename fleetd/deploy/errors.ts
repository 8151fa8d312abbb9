/** Typed errors of scale/deploy requests; the API translates them once (400, 404, 409). */

/** The request cannot work as given (answered 400). */
export class DeployInputError extends Error {
  override readonly name = "DeployInputError";
}

/** The template is not in the cluster (answered 404). */
export class DeployNotFoundError extends Error {
  override readonly name = "DeployNotFoundError";
}

/** Another rollout runs, or etcd changed under the request (answered 409). */
export class DeployConflictError extends Error {
  override readonly name = "DeployConflictError";
}
