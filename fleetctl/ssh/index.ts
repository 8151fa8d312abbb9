/** SSH features of fleetctl: ssh, status, journal, fd-forward and the --tunnel transport. */
import type { TunnelFactory } from "../client-factory";
import type { CommandRegistrar } from "../program";

export const sshTunnel: TunnelFactory = async () => {
  throw new Error("--tunnel is not implemented yet");
};

export const remoteRegistrars: readonly CommandRegistrar[] = [];
