/**
 * `/app/worklet.js`: the web phone's two AudioWorklet processors, as a string module. The
 * AudioContext runs at 8000 Hz, the rate of G.711, so nothing is resampled here.
 *
 * - `wp-player`: the door's audio. Decoded 64-sample blocks arrive on the port; a small jitter
 *   buffer (ring of 1 s) starts playing once it holds the target (40 ms), plays silence and
 *   refills after an underrun, and drops the oldest samples when it holds more than 200 ms (a
 *   clock drift or a burst after a stall) so that the delay stays bounded.
 * - `wp-capture`: the microphone. Cuts the input into 64-sample (8 ms) blocks and posts each
 *   with the context time of its first sample.
 *
 * @module
 */

/** The script's text. */
export const WORKLET_JS: string = String
  .raw`/* Web phone audio worklets (AudioContext at 8000 Hz). */
class Player extends AudioWorkletProcessor {
  constructor() {
    super();
    this.size = 8000;
    this.ring = new Float32Array(this.size);
    this.read = 0;
    this.fill = 0;
    this.target = 320;
    this.max = 1600;
    this.playing = false;
    this.underruns = 0;
    this.dropped = 0;
    this.port.onmessage = (e) => {
      const d = e.data;
      if (d && d.reset) { this.read = 0; this.fill = 0; this.playing = false; return; }
      if (!(d instanceof Float32Array)) return;
      if (this.fill + d.length > this.size) return;
      let w = (this.read + this.fill) % this.size;
      for (let i = 0; i < d.length; i++) { this.ring[w] = d[i]; w = w + 1 === this.size ? 0 : w + 1; }
      this.fill += d.length;
      if (this.fill > this.max) {
        const cut = this.fill - this.target;
        this.read = (this.read + cut) % this.size;
        this.fill -= cut;
        this.dropped += cut;
      }
    };
  }
  process(inputs, outputs) {
    const out = outputs[0] && outputs[0][0];
    if (!out) return true;
    if (!this.playing && this.fill >= this.target) this.playing = true;
    for (let i = 0; i < out.length; i++) {
      if (this.playing && this.fill > 0) {
        out[i] = this.ring[this.read];
        this.read = this.read + 1 === this.size ? 0 : this.read + 1;
        this.fill--;
      } else {
        if (this.playing) { this.playing = false; this.underruns++; }
        out[i] = 0;
      }
    }
    if (currentFrame % 8000 < out.length) {
      this.port.postMessage({ stats: { fill: this.fill, underruns: this.underruns, dropped: this.dropped } });
    }
    return true;
  }
}

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(64);
    this.at = 0;
    this.startFrame = 0;
  }
  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    for (let i = 0; i < input.length; i++) {
      if (this.at === 0) this.startFrame = currentFrame + i;
      this.block[this.at++] = input[i];
      if (this.at === 64) {
        this.port.postMessage({ samples: this.block, time: this.startFrame / sampleRate }, [this.block.buffer]);
        this.block = new Float32Array(64);
        this.at = 0;
      }
    }
    return true;
  }
}

registerProcessor('wp-player', Player);
registerProcessor('wp-capture', Capture);
`;
