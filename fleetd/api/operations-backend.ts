/**
 * What the API needs for scale and rolling deployments (`/scale/<template>`, `/deployments/<template>`),
 * and the adapter over fleetd's `DeployOperations` that translates its typed errors once, here.
 */
import type { ApiDeployPlan, ApiDeployRequest, ApiScalePlan, ApiScaleRequest, DeploymentRecord, DeploymentSummary } from "../../lib/api/deploy-types";
import type { DeployOperations } from "../deploy/deploy-operations";
import { DeployConflictError, DeployInputError, DeployNotFoundError } from "../deploy/errors";
import { EtcdUnavailableError } from "../registry/errors";
import { BackendConflictError, BackendInvalidError, BackendNotFoundError, BackendUnavailableError } from "./backend";

export interface OperationsBackend {
  getDeployment(template: string, signal?: AbortSignal): Promise<DeploymentRecord | undefined>;
  getDeploymentSummary(template: string, signal?: AbortSignal): Promise<DeploymentSummary | undefined>;
  deploy(template: string, req: ApiDeployRequest, signal?: AbortSignal): Promise<ApiDeployPlan>;
  scale(template: string, req: ApiScaleRequest, signal?: AbortSignal): Promise<ApiScalePlan>;
}

async function translated<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof DeployInputError) throw new BackendInvalidError(err.message, { cause: err });
    if (err instanceof DeployNotFoundError) throw new BackendNotFoundError(err.message, { cause: err });
    if (err instanceof DeployConflictError) throw new BackendConflictError(err.message, { cause: err });
    if (err instanceof EtcdUnavailableError) throw new BackendUnavailableError(err.message, { cause: err });
    throw err;
  }
}

export function operationsBackend(ops: Pick<DeployOperations, "getDeployment" | "getDeploymentSummary" | "deploy" | "scale">): OperationsBackend {
  return {
    getDeployment: (t, s) => translated(() => ops.getDeployment(t, s)),
    getDeploymentSummary: (t, s) => translated(() => ops.getDeploymentSummary(t, s)),
    deploy: (t, r, s) => translated(() => ops.deploy(t, r, s)),
    scale: (t, r, s) => translated(() => ops.scale(t, r, s)),
  };
}
