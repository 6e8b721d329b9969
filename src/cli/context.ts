/** What every command gets from the global options: the client and the output mode. */
import { type Command, InvalidArgumentError } from "commander";
import { isAgentError } from "../common/errors.js";
import { readSecretFile } from "../config/config.js";
import { type EndRef, parseEnd as parseEndRule } from "../model/names.js";
import { AgentClient, UsageError } from "./client.js";

export interface GlobalOptions {
  url: string;
  token?: string;
  tokenFile?: string;
  json?: boolean;
}

export interface Ctx {
  client: AgentClient;
  json: boolean;
  /** Prints a line (or block) to stdout. */
  out(text: string): void;
  /** Prints the answer as JSON (--json), else the human rendering. */
  show(answer: unknown, human: () => string): void;
}

export function ctxOf(cmd: Command): Ctx {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const out = (text: string) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  const json = g.json === true;
  return {
    client: new AgentClient(g.url, tokenOf(g)),
    json,
    out,
    show(answer, human) {
      out(json ? JSON.stringify(answer, null, 2) : human());
    },
  };
}

/** The agent's secret: --token / ARCHETYPE_AGENT_SECRET, or read from --token-file / ARCHETYPE_AGENT_SECRET_FILE. */
function tokenOf(g: GlobalOptions): string | undefined {
  if (g.tokenFile === undefined || g.tokenFile === "") return g.token;
  if (g.token !== undefined && g.token !== "") {
    throw new UsageError(
      "the secret is given twice: --token (ARCHETYPE_AGENT_SECRET) and --token-file (ARCHETYPE_AGENT_SECRET_FILE)",
      "pass one of them",
    );
  }
  return readSecretFile(g.tokenFile, "--token-file");
}

/** `NODE:IF` from the command line, by the agent's own name rules: a bad end is a usage error. */
export function parseEnd(text: string): EndRef {
  try {
    return parseEndRule(text);
  } catch (e) {
    if (isAgentError(e)) throw new UsageError(e.message, e.hint);
    throw e;
  }
}

/** A positive integer option. */
export function parseIntOption(name: string) {
  return (text: string): number => {
    if (!/^\d+$/.test(text)) throw new InvalidArgumentError(`${name} must be a whole number`);
    return Number(text);
  };
}
