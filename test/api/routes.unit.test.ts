import { browserSuite } from "./browser-suite.js";
import { stubFactory } from "./fixture.js";
import { routeSuite } from "./route-suite.js";

routeSuite("stub services", stubFactory);
browserSuite("stub services", stubFactory);
