import { cliSuite } from "./cli-suite.js";
import { stubTarget } from "./target.js";

cliSuite("stub services", stubTarget);
