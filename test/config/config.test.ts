import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { defaultConfig, loadConfig, SETTINGS } from "../../src/config/config.js";

const dir = mkdtempSync(join(tmpdir(), "archnet-config-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("defaults < file < environment < flags", () => {
  const file = join(dir, "config.json");
  writeFileSync(
    file,
    JSON.stringify({ ARCHETYPE_AGENT_PLUGIN_SPARES: "3", ARCHETYPE_AGENT_BRIDGE: "from-file" }),
  );
  assert.equal(loadConfig({ env: {} }).pluginSpares, defaultConfig().pluginSpares);
  const fromFile = loadConfig({ file, env: {} });
  assert.equal(fromFile.pluginSpares, 3);
  assert.equal(fromFile.bridge, "from-file");
  const fromEnv = loadConfig({ file, env: { ARCHETYPE_AGENT_PLUGIN_SPARES: "0" } });
  assert.equal(fromEnv.pluginSpares, 0);
  assert.equal(fromEnv.bridge, "from-file");
  const fromFlag = loadConfig({
    file,
    env: { ARCHETYPE_AGENT_PLUGIN_SPARES: "0" },
    flags: { "plugin-spares": "5" },
  });
  assert.equal(fromFlag.pluginSpares, 5);
});

test("a bad value stops loading with the setting's name", () => {
  for (const [name, value] of [
    ["ARCHETYPE_AGENT_PLUGIN_SPARES", "-1"],
    ["ARCHETYPE_AGENT_PLUGIN_SPARES", "65"],
    ["ARCHETYPE_AGENT_PLUGIN_SPARES", "two"],
    ["ARCHETYPE_AGENT_CLEANUP_GRACE", "1.5"],
    ["ARCHETYPE_AGENT_UNDERLAY_IP", "198.18.0.1/24/1"],
  ] as const) {
    assert.throws(
      () => loadConfig({ env: { [name]: value } }),
      (e: Error & { code?: string }) => e.code === "INVALID_CONFIG" && e.message.startsWith(name),
      `${name}=${value}`,
    );
  }
});

test("every setting has a distinct variable and flag and is in the README's table", async () => {
  const { readFileSync } = await import("node:fs");
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const envs = SETTINGS.map((s) => s.env);
  assert.equal(new Set(envs).size, envs.length);
  assert.equal(new Set(SETTINGS.map((s) => s.flag)).size, envs.length);
  for (const env of envs) {
    // The table folds families: `ARCHETYPE_AGENT_LOCAL_MTU` / `_OVERLAY_MTU`.
    const short = `\`_${env.split("_").slice(2).join("_")}\``;
    const tail = `\`_${env.split("_").at(-1)}\``;
    assert.ok(
      readme.includes(`\`${env}\``) || readme.includes(short) || readme.includes(tail),
      `${env} is documented in README.md`,
    );
  }
});
