/**
 * Leadership as the engine sees it. `LeaderElection` (./leader-election) campaigns on etcd;
 * `MemoryLeaderSession` (./memory-leader-session) is granted and taken away by a test.
 */
export interface LeaderSession {
  readonly isLeader: boolean;
  /** Called with true when leadership is acquired and false when it is lost; returns an unsubscribe. */
  onChange(listener: (leader: boolean) => void): () => void;
  /** Takes part until `signal` aborts. */
  run(signal: AbortSignal): Promise<void>;
  /** Gives up leadership at once (graceful shutdown). */
  resign(): Promise<void>;
  /** Stops holding leadership without releasing it (as a crash would): another takes over after its TTL. */
  abandon(): void;
}
