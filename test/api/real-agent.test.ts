import { realAgentFactory } from "../harness/real-agent-fixture.js";
import { fuzzSuite } from "./fuzz-suite.js";
import { routeSuite } from "./route-suite.js";

routeSuite("real agent", realAgentFactory);
fuzzSuite("real agent", realAgentFactory, { count: 1500 });
