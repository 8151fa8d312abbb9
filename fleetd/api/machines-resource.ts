/** `/machines`: GET (paged, sorted by ID) and PATCH of dynamic metadata. */
import type { ApiMachine } from "../../lib/api/types";
import { HttpError, readJsonBody, sendEmpty, sendJson } from "./http-io";
import { MetadataPatchError, parseMetadataPatch } from "./metadata-patch";
import type { ResourceContext } from "./units-resource";

export async function machines(ctx: ResourceContext): Promise<void> {
  if (ctx.req.method === "GET") {
    const page = await ctx.listings.page("machines", ctx.query, ctx.tokenLimit, async () => {
      const all = await ctx.backend.listMachines(ctx.signal);
      return all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    });
    sendJson(ctx.res, 200, { machines: page.items.map(wireMachine), ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}) });
    return;
  }
  if (ctx.req.method === "PATCH") {
    // Like fleet: no Content-Type check on PATCH, every op validated before any is applied.
    let changes;
    try {
      changes = parseMetadataPatch(await readJsonBody(ctx.req));
    } catch (err) {
      if (err instanceof MetadataPatchError) throw new HttpError(400, err.message, { cause: err });
      throw err;
    }
    await ctx.backend.setMachineMetadata(changes, ctx.signal);
    sendEmpty(ctx.res, 204);
    return;
  }
  throw new HttpError(405, `method ${ctx.req.method ?? "?"} not allowed on /machines: use GET or PATCH`, {
    headers: { Allow: "GET, PATCH" },
  });
}

function wireMachine(m: ApiMachine): ApiMachine {
  const out: ApiMachine = { id: m.id };
  if (m.primaryIP) out.primaryIP = m.primaryIP;
  if (m.metadata && Object.keys(m.metadata).length > 0) out.metadata = m.metadata;
  if (m.capacity) out.capacity = m.capacity;
  return out;
}
