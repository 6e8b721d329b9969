/**
 * The libnetwork remote network driver protocol (JSON over HTTP on a unix socket), as far as the
 * archetype-ovs driver uses it. Docker sends no Content-Type; every answer is JSON, errors as
 * `{"Err": "message"}`.
 */

/** `docker network create -o key=value` lands in this generic option. */
export const GENERIC_OPTION = "com.docker.network.generic";
/** The container end's ifalias: the runtime hook renames `archetype:NAME` to NAME. */
export const ALIAS_PREFIX = "archetype:";

export interface CreateNetworkRequest {
  NetworkID: string;
  Options?: Record<string, unknown> & { [GENERIC_OPTION]?: Record<string, unknown> };
  /** The pools Docker's IPAM chose; the null IPAM driver (`--ipam-driver null`) gives 0.0.0.0/0. */
  IPv4Data?: { Pool?: string; Gateway?: string }[];
  IPv6Data?: { Pool?: string; Gateway?: string }[];
}

/** The pool of the null IPAM driver: Docker assigns no addresses from it. */
export const NULL_POOLS = new Set(["0.0.0.0/0", "::/0"]);

export interface NetworkRequest {
  NetworkID: string;
}

export interface EndpointRequest {
  NetworkID: string;
  EndpointID: string;
  Interface?: { Address?: string; AddressIPv6?: string; MacAddress?: string };
}

export interface JoinRequest {
  NetworkID: string;
  EndpointID: string;
  SandboxKey?: string;
}

export interface JoinResponse {
  InterfaceName: { SrcName: string; DstPrefix: string };
  DisableGatewayService: boolean;
}

export type DriverAnswer = Record<string, unknown>;

export function errAnswer(message: string): { Err: string } {
  return { Err: message };
}
