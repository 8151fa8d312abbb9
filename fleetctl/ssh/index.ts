/** SSH features of fleetctl: ssh, status, journal, fd-forward and the --tunnel transport. */
import type { CommandRegistrar } from "../program";
import { registerRemote } from "./remote-commands";

export { sshTunnel } from "./tunnel";

/** The SSH commands, registered into the program by `main.ts`. */
export const remoteRegistrars: readonly CommandRegistrar[] = [registerRemote];
