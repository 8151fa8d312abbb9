/**
 * The API token the page sends as `Authorization: Bearer …` (never a cookie: a request another site
 * makes the browser send carries no credentials, so actions are CSRF-safe). Kept in this tab's
 * sessionStorage; `fleetctl dashboard` hands its session token over in the URL fragment (`#token=…`,
 * which browsers never send to a server), removed from the address bar at once.
 */
const STORAGE_KEY = "fleet-dashboard-token";

export class Credentials {
  private token: string;

  constructor(private readonly storage: Storage | undefined) {
    this.token = storage?.getItem(STORAGE_KEY) ?? "";
  }

  /** Takes a `#token=…` fragment into storage and strips it from the URL. */
  adoptFragment(location: Location, history: History): void {
    const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (!match) return;
    this.set(decodeURIComponent(match[1] ?? ""));
    history.replaceState(null, "", location.pathname + location.search);
  }

  get value(): string {
    return this.token;
  }

  set(token: string): void {
    this.token = token.trim();
    if (this.token) this.storage?.setItem(STORAGE_KEY, this.token);
    else this.storage?.removeItem(STORAGE_KEY);
  }

  /** Headers for a request: the bearer token when one is set. */
  headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.token ? { ...extra, Authorization: `Bearer ${this.token}` } : { ...extra };
  }
}
