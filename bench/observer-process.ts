/**
 * The launch observer of `npm run bench:scheduler`, in its own process (as an operator's watch would
 * be): watches `P/state/` from a revision and counts the units whose agent published a launched,
 * active state. In the process of the 10,000 simulated machines the same watch was read late whenever
 * their event loop was busy (65,616 of 100,200 states seen when all were in etcd, 6 s before the last
 * was seen), so the launch time measured that process's backlog rather than the cluster.
 *
 * argv: <etcd endpoint> <key prefix> <revision to watch from> <warm-up name prefix>. Prints
 * `{"ready":true}` once the watch is open. Then, for each stdin line `launched N` or `warm N`, prints
 * `{"at":…,"count":…}` as soon as N units (not warm-up ones), or N warm-up units, are seen launched:
 * `at` is the wall-clock time (ms since the epoch, sub-millisecond) the Nth was seen.
 */
import { createInterface } from "node:readline";
import { createEtcdClient, EtcdStore } from "../fleetd/registry/etcd-store";
import { parseRecord, type StateRecord } from "../fleetd/registry/keys";

const now = (): number => performance.timeOrigin + performance.now();

async function main(): Promise<void> {
  const [endpoint, prefix, fromRevision, warmPrefix] = process.argv.slice(2);
  if (!endpoint || !prefix || !fromRevision || !warmPrefix) throw new Error("usage: observer-process.ts <etcd endpoint> <key prefix> <revision> <warm-up name prefix>");
  const client = createEtcdClient({ endpoints: [endpoint], requestTimeoutMs: 30_000 });
  const seen = { launched: new Set<string>(), warm: new Set<string>() };
  let waiting: { kind: "launched" | "warm"; n: number } | undefined;
  const answer = (): void => {
    if (!waiting || seen[waiting.kind].size < waiting.n) return;
    const count = seen[waiting.kind].size;
    waiting = undefined;
    process.stdout.write(`${JSON.stringify({ at: now(), count })}\n`);
  };
  const statePrefix = `${prefix}state/`;
  const watch = await new EtcdStore(client, { prefix }).watch(statePrefix, Number(fromRevision), {
    onChanges: (changes) => {
      for (const c of changes) {
        if (c.type !== "put") continue;
        const s = parseRecord<StateRecord>(c.key, c.value);
        if (!s.launched || s.activeState !== "active") continue;
        const name = c.key.slice(statePrefix.length).split("/")[0]!;
        (name.startsWith(warmPrefix) ? seen.warm : seen.launched).add(name);
      }
      answer();
    },
    onError: (err) => {
      process.stderr.write(`bench observer: the state watch ended: ${err.message}\n`);
      process.exit(1);
    },
  });
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    const [kind, n] = line.trim().split(" ");
    if ((kind !== "launched" && kind !== "warm") || !Number.isInteger(Number(n))) throw new Error(`bench observer: cannot read ${JSON.stringify(line)}`);
    waiting = { kind, n: Number(n) };
    answer();
  });
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  await new Promise<void>((resolve) => lines.once("close", () => resolve()));
  await watch.close();
  client.close();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench observer process failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
