/** `fleetctl fd-forward SOCKET`: copies stdin to a unix socket and the socket to stdout (tunnel helper). */
import { createConnection } from "node:net";
import { CliError } from "../cli-error";
import type { Action } from "../commands/action";

export const fdForward: Action<object> = async (ctx, args) => {
  if (args.length !== 1) throw new CliError("Provide exactly one argument: the path of the unix socket to forward to");
  const path = args[0]!;
  await new Promise<void>((resolve, reject) => {
    const sock = createConnection({ path });
    sock.once("connect", () => {
      ctx.io.stdin.pipe(sock);
      sock.pipe(ctx.io.stdout, { end: false });
    });
    sock.once("error", (err) => reject(new CliError(`Unable to connect to socket ${path}: ${err.message}`, 1, { cause: err })));
    sock.once("close", () => {
      ctx.io.stdin.unpipe(sock);
      ctx.io.stdin.pause();
      resolve();
    });
  });
  return 0;
};
