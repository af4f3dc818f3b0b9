/**
 * The codec of a door's video frame from its bytes: the door protocol's data type says I- or
 * P-frame and size, never the codec. One sniffer for the transcoder and the visitor snapshots
 * (the web phone's `WP.sniffCodec` in core.js is the same rule in the browser).
 *
 * @module
 */

/** A video codec as the gateway tells them apart. */
export type SniffedCodec = "jpeg" | "h264" | "mpeg4" | "unknown";

/**
 * The codec of a frame: JPEG (`FF D8 FF`); MPEG-4 Part 2 when a start code `00 00 01` is
 * followed by a byte ≥ 0x80 (VOP `B6`, VOS `B0`, GOV `B3`, VO `B5`: H.264's forbidden zero bit
 * excludes these; its access unit delimiter `09` and SPS `67` do not); H.264 when there are
 * start codes and none of those; else unknown. Reads at most the first 4 KiB.
 */
export function sniffCodec(b: Uint8Array): SniffedCodec {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  let starts = 0;
  const n = Math.min(b.length, 4096);
  for (let i = 0; i + 3 < n; i++) {
    if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 1) {
      if (b[i + 3]! & 0x80) return "mpeg4";
      starts++;
      i += 2;
    }
  }
  return starts ? "h264" : "unknown";
}
