// The H.264 player of the web UI and of a stream's viewer page: a stream's timed H.264 form
// (`<stream>/h264/units`) decoded with WebCodecs onto a canvas. No dependencies, no build step.

/**
 * A stream's H.264 form decoded with WebCodecs onto a canvas: reads `<stream>/h264/units`
 * (one access unit per multipart part, with `X-Timestamp` and `X-Keyframe`), starts at a
 * keyframe, and shows the bit rate, frame rate and latency (capture time to decoded frame).
 * `log` keeps the last 2000 decoded frames' capture time and latency, for tests and curious users.
 */
export class H264Player {
  /** `fetcher`: how to fetch (the web UI's adds its access token); `fetch` by default. */
  constructor(canvas, href, label, fetcher = (...args) => fetch(...args)) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.label = label;
    this.log = [];
    this.decoded = 0;
    this.errors = 0;
    this.abort = new AbortController();
    this.window = { bytes: 0, frames: 0, latencies: [], since: performance.now() };
    this.decoder = null;
    this.started = Date.now();
    this.fetcher = fetcher;
    this.failure = null;
    this.read(href).catch((error) => {
      if (this.abort.signal.aborted) return;
      this.failure = `H.264 stopped: ${error.message ?? error}`;
      this.label.textContent = this.failure;
    });
    this.timer = setInterval(() => this.report(), 1000);
  }

  stop() {
    this.abort.abort();
    clearInterval(this.timer);
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
  }

  /** A decoder for the stream whose keyframe is `unit` (the codec string is read off its SPS). */
  configure(unit) {
    const sps = spsOf(unit);
    if (!sps) return false;
    const hex = (byte) => byte.toString(16).padStart(2, "0");
    this.decoder = new VideoDecoder({
      output: (frame) => this.show(frame),
      error: () => { this.errors += 1; this.decoder = null; },
    });
    // No `description`: the chunks are Annex B, SPS and PPS in every keyframe.
    this.decoder.configure({ codec: `avc1.${hex(sps[1])}${hex(sps[2])}${hex(sps[3])}`, optimizeForLatency: true });
    return true;
  }

  show(frame) {
    if (this.canvas.width !== frame.displayWidth || this.canvas.height !== frame.displayHeight) {
      this.canvas.width = frame.displayWidth;
      this.canvas.height = frame.displayHeight;
    }
    this.context.drawImage(frame, 0, 0);
    const captured = frame.timestamp / 1000;
    const latency = Date.now() - captured;
    frame.close();
    this.decoded += 1;
    this.window.frames += 1;
    this.window.latencies.push(latency);
    this.log.push({ captured, latency, at: Date.now() });
    if (this.log.length > 2000) this.log.shift();
  }

  decode(unit, timestamp, keyframe) {
    if (!this.decoder || this.decoder.state === "closed") {
      if (!keyframe || !this.configure(unit)) return;
    }
    // A decoder behind by more than a few frames drops this one rather than queue it.
    if (this.decoder.decodeQueueSize > 10 && !keyframe) return;
    this.decoder.decode(new EncodedVideoChunk({ type: keyframe ? "key" : "delta", timestamp, data: unit }));
  }

  report() {
    if (this.failure) return;
    const w = this.window;
    const seconds = (performance.now() - w.since) / 1000;
    const sorted = [...w.latencies].sort((a, b) => a - b);
    const median = sorted.length ? `${Math.round(sorted[Math.floor(sorted.length / 2)])} ms` : "–";
    const rate = (w.bytes * 8) / seconds / 1e6;
    this.label.textContent = `H.264 · ${rate.toFixed(2)} Mbit/s · ${(w.frames / seconds).toFixed(1)} fps · latency ${median}`;
    this.window = { bytes: 0, frames: 0, latencies: [], since: performance.now() };
  }

  /** Reads the multipart body part by part: headers, then `Content-Length` bytes of unit. */
  async read(href) {
    const response = await this.fetcher(href, { signal: this.abort.signal, cache: "no-store" });
    if (!response.ok) {
      let detail = `${response.status} ${response.statusText}`;
      try { detail = (await response.json()).detail ?? detail; } catch { /* not problem JSON */ }
      throw new Error(detail);
    }
    const reader = response.body.getReader();
    let buffer = new Uint8Array(0);
    const headerEnd = new TextEncoder().encode("\r\n\r\n");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the stream ended");
      this.window.bytes += value.length;
      const joined = new Uint8Array(buffer.length + value.length);
      joined.set(buffer);
      joined.set(value, buffer.length);
      buffer = joined;
      for (;;) {
        const end = indexOf(buffer, headerEnd);
        if (end < 0) break;
        const head = new TextDecoder().decode(buffer.subarray(0, end));
        const headers = new Map(head.split("\r\n").filter((line) => line.includes(":"))
          .map((line) => [line.slice(0, line.indexOf(":")).trim().toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]));
        const length = Number(headers.get("content-length"));
        if (!Number.isFinite(length)) throw new Error("a part without Content-Length");
        if (buffer.length < end + 4 + length) break;
        const unit = buffer.slice(end + 4, end + 4 + length);
        buffer = buffer.subarray(end + 4 + length);
        const captured = Date.parse(headers.get("x-timestamp"));
        const micros = headers.get("x-timestamp").match(/\.(\d{6})/);
        const timestamp = captured * 1000 + (micros ? Number(micros[1]) % 1000 : 0);
        this.decode(unit, timestamp, headers.get("x-keyframe") === "true");
      }
    }
  }
}

/** Where `needle` starts in `haystack`, or -1. */
function indexOf(haystack, needle) {
  outer: for (let i = 0; i + needle.length <= haystack.length; i += 1) {
    for (let j = 0; j < needle.length; j += 1) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** The SPS NAL unit's payload (profile, constraints, level) of an Annex B access unit. */
function spsOf(unit) {
  for (let i = 0; i + 4 < unit.length; i += 1) {
    if (unit[i] === 0 && unit[i + 1] === 0 && unit[i + 2] === 1 && (unit[i + 3] & 0x1f) === 7) {
      return unit.subarray(i + 3, i + 7);
    }
  }
  return null;
}
