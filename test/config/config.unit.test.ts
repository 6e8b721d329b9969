import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { defaultConfig, loadConfig, readSecretFile, SETTINGS } from "../../src/config/config.js";

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
    ["ARCHETYPE_AGENT_SWITCH_TIMEOUT_SCALE", "0"],
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
  const flags = SETTINGS.flatMap((s) => (s.flag === undefined ? [] : [s.flag]));
  assert.equal(new Set(flags).size, flags.length);
  // `ps` shows arguments: the secret has no flag (--secret-file names a file)
  assert.deepEqual(
    SETTINGS.filter((s) => s.flag === undefined).map((s) => s.env),
    ["ARCHETYPE_AGENT_SECRET"],
  );
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

/** A file of this text and mode (chmod: the umask does not narrow it). */
function secretFile(name: string, text: string, mode: number): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

function assertConfigError(fn: () => unknown, message: RegExp, hint?: RegExp): void {
  assert.throws(fn, (e: Error & { code?: string; hint?: string }) => {
    assert.equal(e.code, "INVALID_CONFIG");
    assert.match(e.message, message);
    if (hint) assert.match(e.hint ?? "", hint);
    return true;
  });
}

test("ARCHETYPE_AGENT_SECRET_FILE: the secret from a file only its owner (and group) can read", () => {
  const owner = secretFile("secret-600", "s3cret-from-file\n", 0o600);
  assert.equal(loadConfig({ env: { ARCHETYPE_AGENT_SECRET_FILE: owner } }).secret, "s3cret-from-file");
  assert.equal(loadConfig({ env: {}, flags: { "secret-file": owner } }).secret, "s3cret-from-file");
  const group = secretFile("secret-640", "  g-secret  ", 0o640);
  assert.equal(loadConfig({ env: { ARCHETYPE_AGENT_SECRET_FILE: group } }).secret, "g-secret");
  // a secret file lets a non-loopback listener start, as the variable does
  assert.equal(
    loadConfig({ env: { ARCHETYPE_AGENT_SECRET_FILE: owner, ARCHETYPE_AGENT_LISTEN: "0.0.0.0:8001" } })
      .secret,
    "s3cret-from-file",
  );
  assert.equal(loadConfig({ env: { ARCHETYPE_AGENT_SECRET_FILE: "" } }).secret, undefined);
});

test("a secret file other users may read or write, or that is odd, is refused naming the setting", () => {
  for (const mode of [0o644, 0o604, 0o602, 0o666]) {
    const path = secretFile(`secret-${mode.toString(8)}`, "s3cret", mode);
    assertConfigError(
      () => loadConfig({ env: { ARCHETYPE_AGENT_SECRET_FILE: path } }),
      new RegExp(
        `^ARCHETYPE_AGENT_SECRET_FILE: ${path} is open to every user \\(mode 0${mode.toString(8)}\\)`,
      ),
      new RegExp(`chmod 600 ${path}`),
    );
  }
  const cases: [string, RegExp][] = [
    [join(dir, "missing"), /does not exist/],
    [dir, /is not a regular file/],
    [secretFile("secret-empty", "\n", 0o600), /must hold the secret on one line/],
    [secretFile("secret-lines", "a\nb\n", 0o600), /must hold the secret on one line/],
    ["relative/secret", /must be an absolute path/],
  ];
  for (const [path, message] of cases) {
    assertConfigError(() => loadConfig({ env: { ARCHETYPE_AGENT_SECRET_FILE: path } }), message);
  }
  const owner = secretFile("secret-both", "s3cret", 0o600);
  assertConfigError(
    () => loadConfig({ env: { ARCHETYPE_AGENT_SECRET: "x", ARCHETYPE_AGENT_SECRET_FILE: owner } }),
    /^ARCHETYPE_AGENT_SECRET_FILE: the secret is also set by ARCHETYPE_AGENT_SECRET/,
  );
  // the CLI's --token-file uses the same rules under its own name
  assertConfigError(
    () => readSecretFile(join(dir, "secret-644"), "--token-file"),
    /^--token-file: .* is open/,
  );
});

test("ARCHETYPE_AGENT_ALLOWED_HOSTS: names and addresses, lowercase, without brackets", () => {
  assert.deepEqual(loadConfig({ env: {} }).allowedHosts, []);
  assert.deepEqual(
    loadConfig({ env: { ARCHETYPE_AGENT_ALLOWED_HOSTS: "Agent.Lab.Example, 198.18.0.5,[fd00::1],," } })
      .allowedHosts,
    ["agent.lab.example", "198.18.0.5", "fd00::1"],
  );
  for (const bad of ["http://agent.example", "agent.example:8001", "a b", "-x.example", "*"]) {
    assertConfigError(
      () => loadConfig({ env: { ARCHETYPE_AGENT_ALLOWED_HOSTS: bad } }),
      /^ARCHETYPE_AGENT_ALLOWED_HOSTS: .* is not a host name or IP address/,
    );
  }
});
