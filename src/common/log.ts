import { type Logger, pino } from "pino";

export type { Logger };

/** Structured JSON logs; human-readable when stdout is a terminal. */
export function createLogger(level = process.env.ARCHETYPE_LOG_LEVEL ?? "info"): Logger {
  if (process.stdout.isTTY) {
    return pino({ level, transport: { target: "pino-pretty", options: { colorize: true } } });
  }
  return pino({ level });
}

/** A logger that drops everything (tests, CLI). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
