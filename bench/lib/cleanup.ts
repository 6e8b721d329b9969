/**
 * Everything the bench creates is registered here the moment it exists, and removed in reverse
 * order: at the end of a scenario, at the end of the run, and on SIGINT/SIGTERM.
 */
type Undo = { what: string; fn: () => Promise<unknown> };

const stack: Undo[] = [];

/** Registers an undo action; returns a function that runs it now (once) and unregisters it. */
export function onCleanup(what: string, fn: () => Promise<unknown>): () => Promise<void> {
  const undo: Undo = { what, fn };
  stack.push(undo);
  return async () => {
    const i = stack.indexOf(undo);
    if (i < 0) return;
    stack.splice(i, 1);
    await runOne(undo);
  };
}

async function runOne(u: Undo): Promise<void> {
  try {
    await u.fn();
  } catch (e) {
    process.stderr.write(`cleanup of ${u.what} failed: ${(e as Error).message}\n`);
  }
}

let draining: Promise<void> | undefined;

/** Runs every registered undo action, newest first. Safe to call twice. */
export function cleanupAll(): Promise<void> {
  draining ??= (async () => {
    while (stack.length > 0) await runOne(stack.pop()!);
    draining = undefined;
  })();
  return draining;
}

/**
 * On SIGINT/SIGTERM: clean up everything, then exit 130/143. On an error nothing caught (a
 * rejected promise nobody awaited) the same, then exit 1: Node's default would exit at once and
 * leave the private OVS instances and namespaces running.
 */
export function installExitHandlers(): void {
  for (const event of ["uncaughtException", "unhandledRejection"] as const) {
    process.once(event, (e: unknown) => {
      process.stderr.write(
        `\n${event}: ${(e as Error)?.stack ?? String(e)}\ncleaning up what the bench created...\n`,
      );
      void cleanupAll().finally(() => process.exit(1));
    });
  }
  for (const [sig, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: cleaning up what the bench created...\n`);
      void cleanupAll().finally(() => process.exit(code));
    });
  }
}

/** Runs `fn`; the undo actions it registers are run when it ends, even when it throws. */
export async function scoped<T>(fn: () => Promise<T>): Promise<T> {
  const mark = stack.length;
  try {
    return await fn();
  } finally {
    while (stack.length > mark) await runOne(stack.pop()!);
  }
}
