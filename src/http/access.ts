/**
 * Who may read an operator endpoint (`/metrics`): loopback always, addresses in an allow list of
 * IPv4 addresses and CIDRs, or a request carrying `Authorization: Bearer <token>`.
 *
 * @module
 */

import { parseIp } from "../protocol/address.ts";

/** An IPv4 network. */
export interface Cidr {
  readonly base: number;
  readonly bits: number;
}

function toNumber(ip: readonly number[]): number {
  return ((ip[0]! << 24) >>> 0) + (ip[1]! << 16) + (ip[2]! << 8) + ip[3]!;
}

/** `192.168.1.0/24` or `10.0.0.5` as a network; `undefined` when it is neither. */
export function parseCidr(text: string): Cidr | undefined {
  const [addr = "", bitsText, ...rest] = text.trim().split("/");
  const ip = parseIp(addr);
  if (!ip || rest.length) return undefined;
  if (bitsText !== undefined && !/^\d{1,2}$/.test(bitsText)) return undefined;
  const bits = bitsText === undefined ? 32 : Number(bitsText);
  if (bits > 32) return undefined;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return { base: (toNumber(ip) & mask) >>> 0, bits };
}

/** The IPv4 of `ip`, also when written as an IPv4-mapped IPv6 address. */
function ipv4Of(ip: string): number | undefined {
  const p = parseIp(ip.replace(/^::ffff:/i, ""));
  return p ? toNumber(p) : undefined;
}

/** Is `ip` in `cidr`? */
export function inCidr(ip: string, cidr: Cidr): boolean {
  const n = ipv4Of(ip);
  if (n === undefined) return false;
  const mask = cidr.bits === 0 ? 0 : (~0 << (32 - cidr.bits)) >>> 0;
  return ((n & mask) >>> 0) === cidr.base;
}

/** 127.0.0.0/8 or ::1. */
export function isLoopback(ip: string): boolean {
  return ip === "::1" || (ipv4Of(ip) !== undefined && ipv4Of(ip)! >>> 24 === 127);
}

/** Compares in time that depends on the lengths only. */
function sameText(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ (y[i % (y.length || 1)] ?? 0);
  return diff === 0;
}

/** The rule for one endpoint. */
export interface AccessRule {
  /** Networks allowed besides loopback. */
  readonly allow: readonly Cidr[];
  /** A bearer token that is accepted from anywhere; `undefined`: none. */
  readonly token: string | undefined;
}

/** Builds a rule from the `--metrics-allow` entries and `--metrics-token`. */
export function accessRule(allow: readonly string[], token: string | undefined): AccessRule {
  return { allow: allow.map((a) => parseCidr(a)!).filter(Boolean), token };
}

/** May a request from `ip` with this `Authorization` header read the endpoint? */
export function allowed(rule: AccessRule, ip: string, authorization: string | null): boolean {
  if (isLoopback(ip) || rule.allow.some((c) => inCidr(ip, c))) return true;
  if (rule.token === undefined || authorization === null) return false;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return !!m && sameText(m[1]!, rule.token);
}
