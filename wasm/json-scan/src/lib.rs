//! The validating JSON scan of lib/json-scan.ts, on WebAssembly with 128-bit
//! SIMD, and in the same pass the two checks that decide whether a message's
//! bytes can be sent as they came (lib/raw-frame.ts): no CR or LF, valid
//! UTF-8. It must answer exactly as the JavaScript scan does with those
//! checks (test/unit/byte-scan.test.ts holds them to it); see json-scan.ts
//! for why scanning bytes decides JSON.parse's verdict on their text.
//!
//! No allocator and no imports: the caller (lib/byte-scan.ts) copies the
//! bytes into this module's memory and gives room for one byte per open
//! container.
#![no_std]

use core::arch::wasm32::*;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    unreachable()
}

/// Not JSON: JSON.parse would throw.
const INVALID: u32 = 0;
/// A JSON object with neither `_kafka` nor `$kafkaSse` at its top level.
const PLAIN_OBJECT: u32 = 1;
/// Valid JSON, but a scalar, an array, or an object with a watched or escaped top-level name.
const OTHER: u32 = 2;
/// Added to a valid result: a CR or LF between tokens.
const LINE_BREAK: u32 = 4;
/// Added to a valid result: a byte sequence that is not UTF-8 (inside a string: elsewhere it is invalid JSON).
const BAD_UTF8: u32 = 8;

/// An index that is no index: what the scanning steps return for "not JSON".
const FAIL: usize = usize::MAX;

struct Scan {
    p: *const u8,
    n: usize,
    flags: u32,
    /// Whether the last string scanned had an escape.
    escaped: bool,
}

#[inline(always)]
fn is_hex(c: u8) -> bool {
    let l = c | 32;
    c.is_ascii_digit() || (b'a'..=b'f').contains(&l)
}

impl Scan {
    #[inline(always)]
    fn at(&self, i: usize) -> u8 {
        // SAFETY: every caller checks i < n, and the caller of scan() gave n bytes at p.
        unsafe { *self.p.add(i) }
    }

    #[inline(always)]
    fn skip_space(&mut self, mut i: usize) -> usize {
        while i < self.n {
            let c = self.at(i);
            if c > 32 {
                break;
            }
            if c == 10 || c == 13 {
                self.flags |= LINE_BREAK;
            } else if c != 32 && c != 9 {
                break;
            }
            i += 1;
        }
        i
    }

    #[inline(always)]
    fn is_continuation(&self, i: usize) -> bool {
        i < self.n && (self.at(i) & 0xc0) == 0x80
    }

    /// The length of the UTF-8 sequence whose lead byte (>= 0x80) is at i, or 0
    /// when it is none: no overlong forms, no surrogates, nothing past U+10FFFF
    /// (what Node's buffer.isUtf8 accepts).
    #[inline(always)]
    fn utf8_length(&self, i: usize) -> usize {
        let c = self.at(i);
        if c < 0xc2 {
            return 0;
        }
        if c < 0xe0 {
            return if self.is_continuation(i + 1) { 2 } else { 0 };
        }
        if i + 1 >= self.n {
            return 0;
        }
        let d = self.at(i + 1);
        if c < 0xf0 {
            let second = match c {
                0xe0 => (0xa0..=0xbf).contains(&d),
                0xed => (0x80..=0x9f).contains(&d),
                _ => (d & 0xc0) == 0x80,
            };
            return if second && self.is_continuation(i + 2) { 3 } else { 0 };
        }
        let second = match c {
            0xf0 => (0x90..=0xbf).contains(&d),
            0xf1..=0xf3 => (d & 0xc0) == 0x80,
            0xf4 => (0x80..=0x8f).contains(&d),
            _ => false,
        };
        if second && self.is_continuation(i + 2) && self.is_continuation(i + 3) {
            4
        } else {
            0
        }
    }

    /// The index after the string whose opening quote is at i - 1, or FAIL.
    #[inline(always)]
    fn string(&mut self, mut i: usize) -> usize {
        self.escaped = false;
        let quote = u8x16_splat(b'"');
        let backslash = u8x16_splat(b'\\');
        let space = u8x16_splat(b' ');
        loop {
            // Sixteen bytes a step while none is `"`, `\`, a control character or non-ASCII.
            while i + 16 <= self.n {
                // SAFETY: i + 16 <= n.
                let v = unsafe { v128_load(self.p.add(i) as *const v128) };
                let stop = v128_or(
                    v128_or(u8x16_eq(v, quote), u8x16_eq(v, backslash)),
                    v128_or(u8x16_lt(v, space), i8x16_lt(v, i8x16_splat(0))),
                );
                let bits = u32::from(u8x16_bitmask(stop));
                if bits != 0 {
                    i += bits.trailing_zeros() as usize;
                    break;
                }
                i += 16;
            }
            while i < self.n {
                let c = self.at(i);
                if c < 32 || c >= 128 || c == b'"' || c == b'\\' {
                    break;
                }
                i += 1;
            }
            if i >= self.n {
                return FAIL;
            }
            let c = self.at(i);
            i += 1;
            if c == b'"' {
                return i;
            }
            if c >= 128 {
                // Invalid UTF-8 decodes to U+FFFD, which a string may hold: still JSON.
                let length = self.utf8_length(i - 1);
                if length == 0 {
                    self.flags |= BAD_UTF8;
                } else {
                    i += length - 1;
                }
                continue;
            }
            if c != b'\\' {
                return FAIL; // a control character
            }
            self.escaped = true;
            if i >= self.n {
                return FAIL;
            }
            let e = self.at(i);
            i += 1;
            if e == b'u' {
                if i + 4 > self.n
                    || !is_hex(self.at(i))
                    || !is_hex(self.at(i + 1))
                    || !is_hex(self.at(i + 2))
                    || !is_hex(self.at(i + 3))
                {
                    return FAIL;
                }
                i += 4;
            } else if !matches!(e, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') {
                return FAIL;
            }
        }
    }

    /// The index after the run of digits at i, or FAIL when there is none.
    #[inline(always)]
    fn digits(&self, mut i: usize) -> usize {
        if i >= self.n || !self.at(i).is_ascii_digit() {
            return FAIL;
        }
        i += 1;
        while i < self.n && self.at(i).is_ascii_digit() {
            i += 1;
        }
        i
    }

    /// The index after the number at i, or FAIL (no `+1`, `.5`, `01`, `1.`, `1e`).
    fn number(&self, mut i: usize) -> usize {
        if self.at(i) == b'-' {
            i += 1;
        }
        if i >= self.n {
            return FAIL;
        }
        if self.at(i) == b'0' {
            i += 1;
        } else {
            i = self.digits(i);
            if i == FAIL {
                return FAIL;
            }
        }
        if i < self.n && self.at(i) == b'.' {
            i = self.digits(i + 1);
            if i == FAIL {
                return FAIL;
            }
        }
        if i < self.n && (self.at(i) | 32) == b'e' {
            i += 1;
            if i < self.n && (self.at(i) == b'+' || self.at(i) == b'-') {
                i += 1;
            }
            return self.digits(i);
        }
        i
    }

    /// Whether the bytes at i are `word`.
    fn is_word(&self, i: usize, word: &[u8]) -> bool {
        if i + word.len() > self.n {
            return false;
        }
        word.iter().enumerate().all(|(k, &w)| self.at(i + k) == w)
    }

    /// The index after `word` (true, false, null) at i, or FAIL.
    fn word(&self, i: usize, word: &[u8]) -> usize {
        if self.is_word(i, word) {
            i + word.len()
        } else {
            FAIL
        }
    }

    /// The index of the value after the member name at i (`"name"`, spaces,
    /// `:`, spaces), or FAIL. At the top level, sets `watched` for the names
    /// that make an object OTHER.
    #[inline(always)]
    fn member(&mut self, i: usize, top: bool, watched: &mut bool) -> usize {
        if i >= self.n || self.at(i) != b'"' {
            return FAIL;
        }
        let start = i + 1;
        let mut i = self.string(start);
        if i == FAIL {
            return FAIL;
        }
        if top {
            let length = i - 1 - start;
            if self.escaped
                || (length == 6 && self.is_word(start, b"_kafka"))
                || (length == 9 && self.is_word(start, b"$kafkaSse"))
            {
                *watched = true;
            }
        }
        i = self.skip_space(i);
        if i >= self.n || self.at(i) != b':' {
            return FAIL;
        }
        self.skip_space(i + 1)
    }
}

/// Scans the `n` bytes at `p`: INVALID, or PLAIN_OBJECT or OTHER with
/// LINE_BREAK and BAD_UTF8 added when they apply. `stack` has room for `n`
/// bytes (one per open container: 1 object, 0 array).
///
/// # Safety
/// `p .. p + n` and `stack .. stack + n` are in this module's memory.
#[no_mangle]
pub unsafe extern "C" fn scan(p: *const u8, n: usize, stack: *mut u8) -> u32 {
    let mut s = Scan { p, n, flags: 0, escaped: false };
    let mut depth: usize = 0;
    let mut watched = false;
    let mut i = s.skip_space(0);
    if i >= n {
        return INVALID;
    }
    let top = s.at(i);
    'value: loop {
        // A value starts at i (spaces skipped).
        if i >= n {
            return INVALID;
        }
        let c = s.at(i);
        if c == b'"' {
            i = s.string(i + 1);
        } else if c == b'{' || c == b'[' {
            let close = if c == b'{' { b'}' } else { b']' };
            i = s.skip_space(i + 1);
            if i < n && s.at(i) == close {
                i += 1;
            } else {
                // SAFETY: depth < n: each open container is one of the n bytes.
                unsafe { *stack.add(depth) = u8::from(c == b'{') };
                depth += 1;
                if c == b'{' {
                    i = s.member(i, depth == 1, &mut watched);
                    if i == FAIL {
                        return INVALID;
                    }
                }
                continue 'value;
            }
        } else if c == b'-' || c.is_ascii_digit() {
            i = s.number(i);
        } else if c == b't' {
            i = s.word(i, b"true");
        } else if c == b'f' {
            i = s.word(i, b"false");
        } else if c == b'n' {
            i = s.word(i, b"null");
        } else {
            return INVALID;
        }
        if i == FAIL {
            return INVALID;
        }
        // After a value: close containers, or go on to the container's next value.
        loop {
            i = s.skip_space(i);
            if depth == 0 {
                if i != n {
                    return INVALID;
                }
                let kind = if top == b'{' && !watched { PLAIN_OBJECT } else { OTHER };
                return kind | s.flags;
            }
            if i >= n {
                return INVALID;
            }
            // SAFETY: depth - 1 < n was written above.
            let in_object = unsafe { *stack.add(depth - 1) } == 1;
            let d = s.at(i);
            if d == b',' {
                i = s.skip_space(i + 1);
                if in_object {
                    i = s.member(i, depth == 1, &mut watched);
                    if i == FAIL {
                        return INVALID;
                    }
                }
                continue 'value;
            }
            if d != (if in_object { b'}' } else { b']' }) {
                return INVALID;
            }
            i += 1;
            depth -= 1;
        }
    }
}
