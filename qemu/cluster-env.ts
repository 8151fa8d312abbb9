/** What `env` prints: fleetctl settings (FLEETCTL_*) and ssh hints for one cluster. */
import { readFileSync } from "node:fs";
import { FLEET_API_PORT } from "./cloud-config";
import { clusterPaths, type ClusterSpec } from "./cluster-layout";

/** Environment lines for fleetctl and ssh against this cluster (`env`). */
export function envLines(root: string, spec: ClusterSpec): string[] {
  const paths = clusterPaths(root, spec.name);
  const first = spec.machines[0];
  return [
    `export FLEETCTL_TUNNEL=127.0.0.1:${first?.sshPort ?? 0}`,
    // fleetd's loopback TCP API on the tunnel host (an SSH direct-tcpip channel; no remote process).
    `export FLEETCTL_ENDPOINT=http://127.0.0.1:${FLEET_API_PORT}`,
    `export FLEETCTL_API_TOKEN=${readFileSync(paths.apiToken, "utf8").trim()}`,
    `export FLEETCTL_KNOWN_HOSTS_FILE=${paths.knownHosts}`,
    `export FLEETCTL_IDENTITY_FILE=${paths.privateKey}`,
    `export FLEETCTL_SSH_USERNAME=core`,
    `# ssh to machine N: ssh -i ${paths.privateKey} -o UserKnownHostsFile=${paths.knownHosts} -p <port> core@127.0.0.1`,
    ...spec.machines.map((m) => `#   ${m.index} ${m.hostname} ${m.ip} port ${m.sshPort}`),
  ];
}
