/**
 * X.509 v3 certificates signed with ECDSA P-256 / SHA-256 (RFC 5280), built with WebCrypto and
 * our DER writer: a local CA for the gateway, and the server certificate it signs (the LAN
 * addresses and host names in its subjectAltName). No Deno API, no dependency.
 *
 * @module
 */

import { concatBytes } from "../bytes.ts";
import {
  bits,
  bool,
  explicit,
  implicit,
  int,
  octets,
  oid,
  seq,
  set,
  time,
  uint,
  utf8,
} from "./der.ts";

const OID = {
  ecPublicKey: "1.2.840.10045.2.1",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  subjectKeyId: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  nameConstraints: "2.5.29.30",
  authorityKeyId: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
} as const;

/** The signature algorithm: ECDSA on P-256 with SHA-256. */
export const KEY_ALGORITHM: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGN: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };

/** Who signs: the issuer's name, private key and key identifier. */
export interface Issuer {
  readonly commonName: string;
  readonly organization?: string;
  readonly privateKey: CryptoKey;
  /** Its subject key identifier (the authority key identifier of what it signs). */
  readonly keyId: Uint8Array;
}

/** What {@linkcode issueCertificate} writes. */
export interface CertificateOptions {
  readonly commonName: string;
  readonly organization?: string;
  /** The subject's public key. */
  readonly publicKey: CryptoKey;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** A CA (may sign certificates, not serve) or a TLS server certificate. */
  readonly kind: "ca" | "server";
  /** subjectAltName DNS names (server). */
  readonly dnsNames?: readonly string[];
  /** subjectAltName IPv4 addresses (server). */
  readonly ips?: readonly string[];
  /**
   * A CA's name constraints (RFC 5280 §4.2.1.10): the only DNS names and IPv4 networks
   * (`a.b.c.d/len`) the certificates it signs may name.
   */
  readonly permitted?: {
    readonly dnsNames: readonly string[];
    readonly networks: readonly string[];
  };
  /** The signer; absent: self-signed by `selfKey`. */
  readonly issuer?: Issuer;
  /** The subject's private key when self-signed. */
  readonly selfKey?: CryptoKey;
  /** 16 random bytes when absent. */
  readonly serial?: Uint8Array;
}

function name(commonName: string, organization?: string): Uint8Array {
  const rdns = [];
  if (organization) rdns.push(set(seq(oid(OID.organization), utf8(organization))));
  rdns.push(set(seq(oid(OID.commonName), utf8(commonName))));
  return seq(...rdns);
}

function ipBytes(ip: string): Uint8Array {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new RangeError(`Cannot put ${JSON.stringify(ip)} in a certificate: not an IPv4 address`);
  }
  return Uint8Array.from(parts);
}

function network(cidr: string): Uint8Array {
  const [ip = "", len = ""] = cidr.split("/");
  const n = Number(len);
  if (!/^\d+$/.test(len) || n > 32) {
    throw new RangeError(`Cannot constrain to ${JSON.stringify(cidr)}: not a.b.c.d/len`);
  }
  const mask = new Uint8Array(4);
  for (let i = 0; i < 4; i++) mask[i] = (0xff << (8 - Math.max(0, Math.min(8, n - i * 8)))) & 0xff;
  return concatBytes(ipBytes(ip), mask);
}

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

const ascii = (s: string) => new TextEncoder().encode(s);

/** The SHA-1 of a public key's bits (RFC 5280 §4.2.1.2, method 1): its key identifier. */
export async function keyIdOf(publicKey: CryptoKey): Promise<Uint8Array> {
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", publicKey));
  // The subjectPublicKey BIT STRING of a P-256 SPKI is its last 65 bytes (04 ‖ X ‖ Y).
  return new Uint8Array(await crypto.subtle.digest("SHA-1", spki.subarray(spki.length - 65)));
}

/** WebCrypto's ECDSA signature (r ‖ s, 32 bytes each) as DER `SEQUENCE { r, s }`. */
export function ecdsaSignatureDer(raw: Uint8Array): Uint8Array<ArrayBuffer> {
  if (raw.length !== 64) {
    throw new RangeError(`Cannot convert an ECDSA signature of ${raw.length} bytes: expected 64`);
  }
  return seq(uint(raw.subarray(0, 32)), uint(raw.subarray(32)));
}

function randomSerial(): Uint8Array {
  const s = crypto.getRandomValues(new Uint8Array(16));
  s[0] = (s[0]! & 0x7f) | 0x01; // positive, 16 bytes long
  return s;
}

/** Builds and signs a certificate; resolves to its DER bytes. */
export async function issueCertificate(o: CertificateOptions): Promise<Uint8Array<ArrayBuffer>> {
  const signer = o.issuer?.privateKey ?? o.selfKey;
  if (!signer) throw new TypeError("Cannot issue a certificate: no issuer and no selfKey");
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", o.publicKey));
  const keyId = await keyIdOf(o.publicKey);
  const subject = name(o.commonName, o.organization);
  const issuer = o.issuer ? name(o.issuer.commonName, o.issuer.organization) : subject;
  const algorithm = seq(oid(OID.ecdsaWithSha256));
  const exts: Uint8Array[] = [extension(OID.subjectKeyId, false, octets(keyId))];
  if (o.issuer) exts.push(extension(OID.authorityKeyId, false, seq(implicit(0, o.issuer.keyId))));
  if (o.kind === "ca") {
    exts.push(
      extension(OID.basicConstraints, true, seq(bool(true), int(0))),
      // keyCertSign (bit 5) and cRLSign (bit 6): 0b0000_0110, one unused bit.
      extension(OID.keyUsage, true, bits(Uint8Array.of(0x06), 1)),
    );
    if (o.permitted) {
      const subtrees = [
        ...o.permitted.dnsNames.map((d) => seq(implicit(2, ascii(d)))),
        ...o.permitted.networks.map((n) => seq(implicit(7, network(n)))),
      ];
      // permittedSubtrees [0] IMPLICIT: the SEQUENCE OF's tag becomes [0] constructed.
      exts.push(extension(OID.nameConstraints, true, seq(explicit(0, concatBytes(...subtrees)))));
    }
  } else {
    const alt = [
      ...(o.dnsNames ?? []).map((d) => implicit(2, ascii(d))),
      ...(o.ips ?? []).map((ip) => implicit(7, ipBytes(ip))),
    ];
    exts.push(
      extension(OID.basicConstraints, true, seq()),
      // digitalSignature (bit 0): 0b1000_0000, seven unused bits.
      extension(OID.keyUsage, true, bits(Uint8Array.of(0x80), 7)),
      extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
      extension(OID.subjectAltName, false, seq(...alt)),
    );
  }
  const tbs = seq(
    explicit(0, int(2)),
    uint(o.serial ?? randomSerial()),
    algorithm,
    issuer,
    seq(time(o.notBefore), time(o.notAfter)),
    subject,
    spki,
    explicit(3, seq(...exts)),
  );
  const raw = new Uint8Array(await crypto.subtle.sign(SIGN, signer, tbs));
  return seq(tbs, algorithm, bits(ecdsaSignatureDer(raw)));
}

/** PEM armour of DER bytes (`CERTIFICATE`, `PRIVATE KEY`). */
export function pem(label: string, der: Uint8Array): string {
  let binary = "";
  for (const b of der) binary += String.fromCharCode(b);
  const b64 = btoa(binary).replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

/** The DER bytes of the first PEM block labelled `label`, or `undefined`. */
export function fromPem(text: string, label: string): Uint8Array<ArrayBuffer> | undefined {
  const m = new RegExp(`-----BEGIN ${label}-----([^-]+)-----END ${label}-----`).exec(text);
  if (!m) return undefined;
  try {
    return Uint8Array.from(atob(m[1]!.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/** The SHA-256 fingerprint of DER bytes as browsers show it: `AB:CD:…` (32 pairs). */
export async function fingerprint(der: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":");
}
