/**
 * The kernel test host (`make test-kernel`, scripts/test-kernel.sh): a VM with Debian's kernel,
 * where the openvswitch kernel datapath, netem and 8021q exist. Suites that run on both
 * datapaths read TEST_DATAPATH; a test that only makes sense there passes `needsKernelHost`.
 */
export const ON_KERNEL_HOST = process.env.ARCHNET_KERNEL_HOST === "1";

/** The datapath test agents use: `system` inside the kernel host, `netdev` elsewhere. */
export const TEST_DATAPATH: "system" | "netdev" =
  process.env.ARCHETYPE_AGENT_DATAPATH === "system" ? "system" : "netdev";

/** The agent's switch-timeout-scale setting, as the VM scripts pass it (an emulated CPU is slow). */
export const TEST_SWITCH_TIMEOUT_SCALE = Number(process.env.ARCHETYPE_AGENT_SWITCH_TIMEOUT_SCALE ?? "1");

/** Test options: `test("...", needsKernelHost, async () => ...)` is skipped, saying why, elsewhere. */
export const needsKernelHost = {
  skip: ON_KERNEL_HOST ? false : "needs the kernel test host (make test-kernel)",
} as const;
