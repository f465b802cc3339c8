// The byte scan that decides whether a message's bytes can be sent as they
// came: valid JSON (lib/json-scan.ts's verdict), and in the same pass whether
// they hold a CR or LF between tokens and whether they are valid UTF-8. On
// WebAssembly (wasm/json-scan, 0.452 against 1.087 µs per 600-byte payload for the
// JavaScript scan with buffer.isUtf8 and two indexOf, bench/pipeline-micro.ts) when the runtime has
// it, else on the JavaScript scan; the two give the same answers
// (test/unit/byte-scan.test.ts).
import { isUtf8 } from 'node:buffer';
import { SCAN_INVALID, scanJson } from './json-scan.ts';
import { JSON_SCAN_WASM } from './json-scan-wasm.ts';

export { SCAN_INVALID, SCAN_OTHER, SCAN_PLAIN_OBJECT } from './json-scan.ts';
/** Added to a valid result: a CR or LF between tokens. */
export const SCAN_LINE_BREAK = 4;
/** Added to a valid result: bytes that are not UTF-8 (inside strings; elsewhere they are invalid JSON). */
export const SCAN_BAD_UTF8 = 8;
/** The kind of a result (SCAN_INVALID, SCAN_PLAIN_OBJECT, SCAN_OTHER) without the additions. */
export const SCAN_KIND = 3;

/**
 * The JavaScript scan: scanJson's verdict, with SCAN_LINE_BREAK and
 * SCAN_BAD_UTF8 added when the bytes are valid JSON.
 */
export function scanBytesJs(b: Uint8Array): number {
  const kind = scanJson(b);
  if (kind === SCAN_INVALID) return SCAN_INVALID;
  return kind | (b.indexOf(10) !== -1 || b.indexOf(13) !== -1 ? SCAN_LINE_BREAK : 0) | (isUtf8(b) ? 0 : SCAN_BAD_UTF8);
}

/**
 * Payloads past this size take the JavaScript scan: the module's memory can
 * only grow, and needs twice a payload's size (its bytes, and a byte per open
 * container).
 */
export const WASM_MAX_BYTES = 1 << 20;
const PAGE = 65_536;

interface ScanExports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  scan(p: number, n: number, stack: number): number;
}

/** The WebAssembly scan, or undefined when this runtime cannot run it (no WebAssembly, or no SIMD). */
function loadWasmScan(): ((b: Uint8Array) => number) | undefined {
  let exports: ScanExports;
  try {
    if (typeof WebAssembly !== 'object') return undefined;
    const module = new WebAssembly.Module(Buffer.from(JSON_SCAN_WASM, 'base64'));
    exports = new WebAssembly.Instance(module, {}).exports as unknown as ScanExports;
  } catch {
    return undefined;
  }
  const { memory, scan } = exports;
  const base = (Number(exports.__heap_base.value) + 15) & ~15;
  let bytes = new Uint8Array(memory.buffer);
  return (b: Uint8Array): number => {
    const n = b.length;
    if (n > WASM_MAX_BYTES) return scanBytesJs(b);
    const need = base + 2 * n;
    if (need > bytes.length) {
      memory.grow(Math.ceil((need - bytes.length) / PAGE));
      bytes = new Uint8Array(memory.buffer);
    }
    bytes.set(b, base);
    return scan(base, n, base + n);
  };
}

/** The WebAssembly scan, when this runtime runs it (exported for the tests). */
export const scanBytesWasm = loadWasmScan();

/** Which scan {@link scanBytes} is. */
export const byteScanEngine: 'wasm' | 'js' = scanBytesWasm ? 'wasm' : 'js';

/**
 * Scans a message's bytes: SCAN_INVALID, or SCAN_PLAIN_OBJECT / SCAN_OTHER
 * (see json-scan.ts) with SCAN_LINE_BREAK and SCAN_BAD_UTF8 added when they
 * apply. Allocates nothing.
 */
export const scanBytes: (b: Uint8Array) => number = scanBytesWasm ?? scanBytesJs;
