/**
 * Process started by systemd-socket-activate in api-socket-activation.test.ts: serves the API on the
 * listeners fleetd would choose (`apiListenersFromConfig` with this process's LISTEN_FDS/LISTEN_PID),
 * backed by a fixed one-machine backend, and reports what it listens on to stderr.
 */
import { apiListenersFromConfig, createApiServer, type ApiBackend } from "../../fleetd/api";

const backend: ApiBackend = {
  isRegistered: () => true,
  listMachines: async () => [{ id: "activated", primaryIP: "10.9.9.9" }],
  setMachineMetadata: async () => undefined,
  listUnits: async () => [],
  getUnit: async () => undefined,
  createUnit: async () => "created" as const,
  setUnitDesiredState: async () => undefined,
  destroyUnit: async () => false,
  listUnitStates: async () => [],
};

const api = createApiServer({ backend, version: "activated" });
const specs = apiListenersFromConfig({ socketPath: "/nonexistent/should-not-be-used.sock" }, process.env, process.pid);
for (const spec of specs) {
  const bound = await api.listen(spec);
  process.stderr.write(`listening on ${bound.address}\n`);
}
process.once("SIGTERM", () => void api.close().then(() => process.exit(0)));
