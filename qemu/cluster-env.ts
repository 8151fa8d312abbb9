/** What `env` prints: fleetctl settings (FLEETCTL_*) and ssh hints for one cluster. */
import { clusterPaths, type ClusterSpec } from "./cluster-layout";

/** Environment lines for fleetctl and ssh against this cluster (`env`). */
export function envLines(root: string, spec: ClusterSpec): string[] {
  const paths = clusterPaths(root, spec.name);
  const first = spec.machines[0];
  return [
    `export FLEETCTL_TUNNEL=127.0.0.1:${first?.sshPort ?? 0}`,
    `export FLEETCTL_KNOWN_HOSTS_FILE=${paths.knownHosts}`,
    `export FLEETCTL_IDENTITY_FILE=${paths.privateKey}`,
    `export FLEETCTL_SSH_USERNAME=core`,
    `# ssh to machine N: ssh -i ${paths.privateKey} -o UserKnownHostsFile=${paths.knownHosts} -p <port> core@127.0.0.1`,
    ...spec.machines.map((m) => `#   ${m.index} ${m.hostname} ${m.ip} port ${m.sshPort}`),
  ];
}
