/**
 * One error shape for every failure: `{"error":{"code","message","hint"?}}` with the status of
 * the code. Typed AgentErrors pass as they are; Fastify's own errors (validation, body parsing,
 * limits) are translated; anything else is a bug: 500 INTERNAL, logged.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { AgentError, type ErrorCode, toAgentError } from "../common/errors.js";
import type { Metrics } from "../metrics.js";
import { PATTERN_RULES } from "../model/names.js";
import { IPV4_PATTERN } from "./schemas.js";

interface ValidationIssue {
  instancePath: string;
  keyword: string;
  message?: string | undefined;
  params: Record<string, unknown>;
}

const BY_STATUS: Record<number, ErrorCode> = {
  400: "BAD_REQUEST",
  401: "UNAUTHORIZED",
  404: "NOT_FOUND",
  405: "METHOD_NOT_ALLOWED",
  413: "PAYLOAD_TOO_LARGE",
  415: "UNSUPPORTED_MEDIA_TYPE",
};

const PATTERN_TEXT: Record<string, string> = {
  ...Object.fromEntries(Object.entries(PATTERN_RULES).map(([p, rule]) => [p, `must be ${rule}`])),
  [IPV4_PATTERN]: "must be an IPv4 address, e.g. 198.18.0.1",
};

const CONTEXT_NAME: Record<string, string> = { body: "body", params: "path", querystring: "query" };

/** "body.nodes[0].name" from "/nodes/0/name". */
function fieldName(context: string, instancePath: string, extra?: string): string {
  const parts = instancePath.split("/").slice(1);
  if (extra !== undefined) parts.push(extra);
  let out = context === "params" ? "" : (CONTEXT_NAME[context] ?? context);
  for (const p of parts) {
    const key = p.replace(/~1/g, "/").replace(/~0/g, "~");
    out += /^\d+$/.test(key) ? `[${key}]` : out === "" ? key : `.${key}`;
  }
  if (context === "params") return out === "" ? "the path" : `path parameter ${out}`;
  return out === "" ? (CONTEXT_NAME[context] ?? context) : out;
}

function describeIssue(
  context: string,
  issue: ValidationIssue,
): { message: string; hint?: string; code?: ErrorCode } {
  const p = issue.params;
  switch (issue.keyword) {
    case "additionalProperties":
      return {
        message: `${fieldName(context, issue.instancePath, String(p.additionalProperty))} is not a known field`,
        hint: "see GET /openapi.json (or /docs) for the fields each route takes",
      };
    case "required":
      return { message: `${fieldName(context, issue.instancePath, String(p.missingProperty))} is required` };
    case "pattern":
      return {
        message: `${fieldName(context, issue.instancePath)} ${PATTERN_TEXT[String(p.pattern)] ?? issue.message}`,
        // A name the schema refuses is the same INVALID_NAME the services give for it.
        ...(Object.hasOwn(PATTERN_RULES, String(p.pattern)) ? { code: "INVALID_NAME" as const } : {}),
      };
    default:
      return { message: `${fieldName(context, issue.instancePath)} ${issue.message ?? "is invalid"}` };
  }
}

/** The AgentError an error answered to a client stands for. */
export function asAgentError(err: unknown): AgentError {
  if (err instanceof AgentError) return err;
  const fe = err as Partial<FastifyError> & { validation?: ValidationIssue[]; validationContext?: string };
  if (Array.isArray(fe.validation) && fe.validation.length > 0) {
    const d = describeIssue(fe.validationContext ?? "body", fe.validation[0] as ValidationIssue);
    return new AgentError(d.code ?? "BAD_REQUEST", d.message, d.hint);
  }
  const status = typeof fe.statusCode === "number" ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    switch (fe.code) {
      case "FST_ERR_CTP_BODY_TOO_LARGE":
        return new AgentError("PAYLOAD_TOO_LARGE", "the request body is larger than 1 MiB");
      case "FST_ERR_CTP_EMPTY_JSON_BODY":
        return new AgentError(
          "BAD_REQUEST",
          "the body is empty but Content-Type is application/json",
          "send a JSON body, or no Content-Type header",
        );
      case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
        return new AgentError("UNSUPPORTED_MEDIA_TYPE", "the Content-Type header is not valid", "send JSON");
      case "FST_ERR_BAD_URL":
        return new AgentError("BAD_REQUEST", "the URL is not valid (bad percent-encoding?)");
      case "FST_ERR_MAX_PARAM_LENGTH":
        return new AgentError("BAD_REQUEST", "a path parameter is too long (at most 63 characters)");
    }
    const code = BY_STATUS[status] ?? "BAD_REQUEST";
    return new AgentError(code, fe.message ?? "bad request");
  }
  return toAgentError(err);
}

/** Sends an error answer and counts it. */
export function sendError(reply: FastifyReply, metrics: Metrics, err: AgentError): FastifyReply {
  metrics.errors.inc({ code: err.code });
  return reply.code(err.status).type("application/json; charset=utf-8").send({ error: err.toJSON() });
}

export function errorHandler(metrics: Metrics) {
  return (err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const ae = asAgentError(err);
    if (ae.status >= 500) {
      request.log.error({ err, code: ae.code, url: request.url, method: request.method }, "request failed");
    } else {
      request.log.debug({ code: ae.code, message: ae.message }, "request refused");
    }
    return sendError(reply, metrics, ae);
  };
}
