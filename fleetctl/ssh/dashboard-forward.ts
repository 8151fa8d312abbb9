/**
 * `fleetctl dashboard`: a local port on 127.0.0.1 whose connections are forwarded to a fleetd's API
 * listener, where fleetd serves its web dashboard at `/`. With `--tunnel` each connection is an SSH
 * channel to the tunnel host (the same transport every API request of fleetctl uses); without it, a
 * plain connection to `--endpoint` (unix socket or http). The forward is byte for byte: fleetd alone
 * decides what needs the bearer token, so the dashboard's credentials are the API's. Before it
 * listens, one API request through the same connections checks that fleetd answers at all.
 */
import { createServer, connect as netConnect, type AddressInfo, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Command } from "commander";
import { ApiError, parseEndpoint, type StreamConnector } from "../../lib/api/client";
import { apiFailure } from "../api-errors";
import { CliError } from "../cli-error";
import { createApiClient } from "../client-factory";
import { portOption, type Action } from "../commands/action";
import type { CommandContext } from "../context";
import type { CommandRegistrar } from "../program";
import { sshTunnel } from "./tunnel";

interface DashboardOpts {
  localPort: number;
}

/** Connections straight to the endpoint (no tunnel). */
function directConnector(endpoint: string): StreamConnector {
  const target = parseEndpoint(endpoint);
  if (target.kind === "https") {
    throw new CliError(`Cannot forward the dashboard to "${endpoint}": https endpoints are not supported by "fleetctl dashboard"; use --tunnel with the machine's unix socket or an http endpoint`);
  }
  const open = (): Socket => (target.kind === "unix" ? netConnect(target.socketPath!) : netConnect(target.port!, target.host));
  return () =>
    new Promise<Duplex>((resolve, reject) => {
      const socket = open();
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(socket);
      });
      socket.once("error", reject);
    });
}

/** Pipes one local connection to a fresh upstream stream; a failed upstream closes the local side. */
function forward(local: Socket, connect: StreamConnector, ctx: CommandContext): void {
  local.pause();
  connect().then(
    (upstream) => {
      const end = (): void => {
        local.destroy();
        upstream.destroy();
      };
      upstream.on("error", (err: Error) => {
        ctx.debug(`dashboard: upstream connection failed: ${err.message}`);
        end();
      });
      local.on("error", end);
      local.pipe(upstream).pipe(local);
      local.resume();
    },
    (err: unknown) => {
      ctx.err(`dashboard: cannot reach fleetd for a browser connection: ${err instanceof Error ? err.message : String(err)}`);
      local.destroy();
    },
  );
}

/**
 * One API request (`GET /machines`) through the connections the forward will use, before it listens:
 * an endpoint that cannot be reached fails the command here rather than showing the operator a dead
 * page. Any answer of fleetd's passes: the page asks for a token on 401 and retries a 503 itself.
 */
async function checkEndpoint(ctx: CommandContext, connect: StreamConnector, target: string): Promise<void> {
  const { client, close } = await createApiClient(ctx.globals(), ctx.io, () => Promise.resolve({ connect, close: () => undefined }));
  try {
    await client.listMachines(ctx.signal);
  } catch (err) {
    if (err instanceof ApiError) return;
    throw apiFailure(`Cannot open the dashboard of ${target}: fleetd cannot be reached`, err);
  } finally {
    close();
  }
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(new CliError(`Cannot open the dashboard on 127.0.0.1:${port}: ${err.message}${err.code === "EADDRINUSE" ? "; choose another --local-port" : ""}`, 1, { cause: err })),
    );
    server.listen(port, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

const dashboard: Action<DashboardOpts> = async (ctx, _args, opts) => {
  const globals = ctx.globals();
  let connect: StreamConnector;
  let closeTunnel = (): void => undefined;
  if (globals.tunnel) {
    const t = await sshTunnel(globals, ctx.io);
    connect = t.connect;
    closeTunnel = t.close;
  } else {
    connect = directConnector(globals.endpoint);
  }
  const sockets = new Set<Socket>();
  const server = createServer((local) => {
    sockets.add(local);
    local.once("close", () => sockets.delete(local));
    forward(local, connect, ctx);
  });
  const target = globals.tunnel ? `${globals.endpoint} via ${globals.tunnel}` : globals.endpoint;
  try {
    await checkEndpoint(ctx, connect, target);
    const port = await listen(server, opts.localPort);
    // The page takes a `#token=` fragment into its session storage and strips it from the address bar.
    const fragment = globals.apiToken ? `#token=${encodeURIComponent(globals.apiToken)}` : "";
    ctx.out(`Dashboard of ${target} at http://127.0.0.1:${port}/${fragment}`);
    ctx.out("Press Ctrl-C to stop.");
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      else ctx.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    return 0;
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    closeTunnel();
  }
};

/** Registers `dashboard`. */
export const registerDashboard: CommandRegistrar = (program: Command, bind) => {
  program
    .command("dashboard")
    .description("Serve a fleetd's web dashboard on a local port (through --tunnel when given) until Ctrl-C")
    .option("--local-port <port>", "Local port on 127.0.0.1 to listen on, 0 to 65535 (0 = any free port)", portOption(0), 0)
    .action(bind(dashboard));
};
