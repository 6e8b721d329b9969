/**
 * The agent's API from the page: same origin, JSON bodies, and the bearer token when the agent
 * has a secret. The token lives in sessionStorage only (gone with the tab), never in a URL.
 */
const TOKEN_KEY = "archnet.token";

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function authHeaders(): Record<string, string> {
  const t = token();
  return t ? { authorization: `Bearer ${t}` } : {};
}

/** The agent answered 401: the page asks for the token. */
export class Unauthorized extends Error {}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? null : JSON.stringify(body),
  });
  if (res.status === 401) throw new Unauthorized("the agent needs its token");
  const json = (await res.json().catch(() => undefined)) as
    | { error?: { message?: string; hint?: string } }
    | undefined;
  if (!res.ok)
    throw new ApiError(json?.error?.message ?? `${res.status} ${res.statusText}`, json?.error?.hint);
  return json as T;
}
