/** The CLI's HTTP client of the agent: JSON in and out, typed errors with hints. */

export class ClientError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly hint?: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "ClientError";
  }
}

/** Bad command-line input found by the CLI itself (exit code 2). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

export const DEFAULT_URL = "http://127.0.0.1:8001";
const TIMEOUT_MS = 120_000;

/** Path segment: ids are validated by the agent, so they only need escaping here. */
export const seg = (s: string): string => encodeURIComponent(s);

export class AgentClient {
  readonly base: string;

  constructor(
    url: string,
    private readonly token?: string,
  ) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`--url ${url} is not a URL`, "e.g. --url http://127.0.0.1:8001");
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new UsageError(`--url ${url} must be http:// or https://`);
    }
    this.base = url.replace(/\/+$/, "");
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("POST", path, body);
  }
  put<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>("PUT", path, body);
  }
  delete<T>(path: string): Promise<T> {
    return this.request<T>("DELETE", path);
  }

  /**
   * A streaming GET (packet capture): the response once the agent answers 200, its body read by
   * the caller as it comes (no overall timeout); an error answer is a ClientError as usual.
   */
  async stream(path: string, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(this.base + path, { headers, ...(signal ? { signal } : {}) });
    } catch (e) {
      throw this.networkError(e);
    }
    if (res.ok) return res;
    const text = await res.text();
    const err = (() => {
      try {
        return (JSON.parse(text) as { error?: { code?: string; message?: string; hint?: string } }).error;
      } catch {
        return undefined;
      }
    })();
    if (err?.message) throw new ClientError(err.message, err.code ?? "HTTP_ERROR", err.hint, res.status);
    throw new ClientError(`GET ${path}: HTTP ${res.status} ${text.slice(0, 200)}`.trim(), "HTTP_ERROR");
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (e) {
      throw this.networkError(e);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string; hint?: string } } | undefined)?.error;
      if (err?.message) throw new ClientError(err.message, err.code ?? "HTTP_ERROR", err.hint, res.status);
      throw new ClientError(
        `${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`.trim(),
        "HTTP_ERROR",
        `is ${this.base} an archetype-network agent?`,
        res.status,
      );
    }
    if (json === undefined && text !== "") return text as T;
    return json as T;
  }

  private networkError(e: unknown): ClientError {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const code = err.cause?.code;
    if (err.name === "TimeoutError") {
      return new ClientError(
        `the agent at ${this.base} did not answer within ${TIMEOUT_MS / 1000} s`,
        "TIMEOUT",
      );
    }
    if (code === "ECONNREFUSED" || code === "ENOENT") {
      return new ClientError(
        `the agent is not running at ${this.base}: start it with \`archnet serve\` or \`make run\``,
        "NOT_RUNNING",
        "or point --url (ARCHETYPE_AGENT_URL) at a running agent",
      );
    }
    return new ClientError(
      `cannot reach the agent at ${this.base}: ${err.cause?.message ?? err.message}`,
      code ?? "NETWORK",
      "check --url (ARCHETYPE_AGENT_URL)",
    );
  }
}
