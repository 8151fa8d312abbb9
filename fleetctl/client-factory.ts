/** Builds the API client from the global options: endpoint, TLS files, token, timeout and tunnel. */
import { readFile } from "node:fs/promises";
import { ApiClient, parseEndpoint, type ApiClientOptions, type StreamConnector } from "../lib/api/client";
import { CliError } from "./cli-error";
import type { CliIO } from "./context";
import type { GlobalOptions } from "./global-options";

/** Opens API streams through the `--tunnel` host; provided by the SSH module. */
export type TunnelFactory = (globals: GlobalOptions, io: CliIO) => Promise<{ connect: StreamConnector; close: () => void }>;

async function readTlsFile(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new CliError(`Unable to initialize client: cannot read ${flag} "${path}": ${(err as Error).message}`, 1, { cause: err });
  }
}

/** A client for the configured endpoint; `close` releases connections and the tunnel. */
export async function createApiClient(globals: GlobalOptions, io: CliIO, tunnel?: TunnelFactory): Promise<{ client: ApiClient; close: () => void }> {
  try {
    parseEndpoint(globals.endpoint);
  } catch (err) {
    throw new CliError(`Unable to initialize client: ${(err as Error).message}`, 1, { cause: err });
  }
  if (globals.endpoint.includes(",")) io.stderr.write(`WARNING: only the first of several endpoints is used: ${globals.endpoint.split(",")[0]!}\n`);
  const options: ApiClientOptions = { endpoint: globals.endpoint };
  // 0 (or less) = no limit, also through a tunnel, whose default is 60 s (see ApiClientOptions).
  if (globals.requestTimeout !== undefined) options.requestTimeoutMs = Math.max(0, globals.requestTimeout * 1000);
  if (globals.apiToken) options.token = globals.apiToken;
  if (globals.caFile) options.ca = await readTlsFile("--ca-file", globals.caFile);
  if (globals.certFile) options.cert = await readTlsFile("--cert-file", globals.certFile);
  if (globals.keyFile) options.key = await readTlsFile("--key-file", globals.keyFile);
  let closeTunnel = (): void => undefined;
  if (globals.tunnel) {
    if (!tunnel) throw new CliError("Unable to initialize client: --tunnel is not available in this build");
    const t = await tunnel(globals, io);
    options.connect = t.connect;
    closeTunnel = t.close;
  }
  const client = new ApiClient(options);
  return {
    client,
    close: () => {
      client.close();
      closeTunnel();
    },
  };
}
