// Who a request counts as, for per-client limits: its address, with every
// address of one IPv6 subscriber network (a /64 by default) as one client.
import type { IncomingMessage } from 'node:http';

/**
 * The default key: the peer's address (or the address given), IPv4 as is
 * (`::ffff:1.2.3.4` and its hex form `::ffff:102:304` written `1.2.3.4`), IPv6
 * as its first `ipv6PrefixLength` bits (`2001:db8:1:2:0:0:0:0/64`), so that every
 * address of one subscriber's network counts as one client. Text that is not
 * an IP address is returned as it is.
 */
export function remoteAddressKey(req: IncomingMessage | string, ipv6PrefixLength = 64): string {
  const address = typeof req === 'string' ? req : req.socket?.remoteAddress;
  if (address === undefined || address === '') return 'unknown';
  if (!address.includes(':')) return address;
  const groups = ipv6Groups(address);
  if (groups === undefined) return address;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const [hi, lo] = [groups[6] as number, groups[7] as number];
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  const bits = Math.max(0, Math.min(128, Math.floor(ipv6PrefixLength)));
  const masked = groups.map((g, i) => {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    return keep === 0 ? 0 : g & (0xffff << (16 - keep)) & 0xffff;
  });
  return `${masked.map((g) => g.toString(16)).join(':')}/${bits}`;
}

/** The eight 16-bit groups of an IPv6 address (a zone such as `%eth0` dropped), or undefined when it is not one. */
function ipv6Groups(address: string): number[] | undefined {
  let text = address;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  const tail: number[] = [];
  const dotted = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (dotted) {
    const bytes = dotted.slice(2).map(Number);
    if (bytes.some((b) => b > 255)) return undefined;
    tail.push(((bytes[0] as number) << 8) | (bytes[1] as number), ((bytes[2] as number) << 8) | (bytes[3] as number));
    const prefix = dotted[1] as string;
    text = prefix.endsWith('::') ? prefix : prefix.slice(0, -1);
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0] as string);
  const rest = halves.length === 2 ? parse(halves[1] as string) : [];
  if (head === undefined || rest === undefined) return undefined;
  const given = head.length + rest.length + tail.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return undefined;
  return [...head, ...new Array(8 - given).fill(0), ...rest, ...tail];
}
