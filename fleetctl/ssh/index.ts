/** SSH features of fleetctl: ssh, status, journal, fd-forward, dashboard and the --tunnel transport. */
import type { CommandRegistrar } from "../program";
import { registerDashboard } from "./dashboard-forward";
import { registerRemote } from "./remote-commands";

export { sshTunnel } from "./tunnel";

/** The SSH commands and the dashboard forward, registered into the program by `main.ts`. */
export const remoteRegistrars: readonly CommandRegistrar[] = [registerRemote, registerDashboard];
