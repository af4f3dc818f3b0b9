/**
 * QR codes of provisioning links, drawn by the gateway as SVG (`npm:qrcode`, pinned in
 * deno.json; no network, no canvas), so the console needs no script of its own for them.
 *
 * @module
 */

import QRCode from "qrcode";

/** An SVG QR code of `text` (error correction M, a 4-module quiet zone). */
export async function qrSvg(text: string): Promise<string> {
  const svg: string = await QRCode.toString(text, {
    type: "svg",
    errorCorrectionLevel: "M",
    margin: 4,
  });
  return svg;
}
