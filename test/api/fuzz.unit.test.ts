import { stubFactory } from "./fixture.js";
import { fuzzSuite } from "./fuzz-suite.js";

fuzzSuite("stub services", stubFactory);
