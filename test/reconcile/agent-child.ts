/**
 * The agent as a separate process, for tests that kill it (-9) mid-work: takes its whole config
 * as JSON in ARCHNET_TEST_CONFIG, serves the HTTP API on 127.0.0.1:0 and prints
 * `{"address": "http://127.0.0.1:PORT"}` on one line once ready.
 */
import { startAgent } from "../../src/agent.js";
import { silentLogger } from "../../src/common/log.js";
import type { AgentConfig } from "../../src/config/config.js";

const config = JSON.parse(process.env.ARCHNET_TEST_CONFIG ?? "") as AgentConfig;
const running = await startAgent(
  { ...config, listen: { host: "127.0.0.1", port: 0 } },
  { logger: silentLogger() },
);
process.stdout.write(`${JSON.stringify({ address: running.address })}\n`);
process.on("SIGTERM", () => {
  void running.close().then(() => process.exit(0));
});
