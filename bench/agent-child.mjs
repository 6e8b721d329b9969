// Runs the agent alone in a process so its memory can be read from /proc/PID/status.
// argv: ROOT (directory URL of the agent's modules: dist/ or src/ under tsx), CONFIG (JSON).
// Prints one JSON line when ready; closes the agent and exits on "exit" on stdin or SIGTERM.
import { readFileSync } from "node:fs";

const [root, configJson] = process.argv.slice(2);
const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "0");
const { createAgent } = await import(`${root}/agent.js`);
const { silentLogger } = await import(`${root}/common/log.js`);
const beforeKb = rssKb();
const t0 = performance.now();
const agent = await createAgent(JSON.parse(configJson), { logger: silentLogger() });
const startMs = performance.now() - t0;
const repairs = await agent.reconcile();
let closing = false;
const stop = async () => {
  if (closing) return;
  closing = true;
  await agent.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.stdin.on("data", (d) => {
  if (String(d).includes("exit")) void stop();
});
process.stdout.write(`${JSON.stringify({ ready: true, beforeKb, startMs, repairs: repairs.length })}\n`);
