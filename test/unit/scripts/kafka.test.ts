// The local broker's cluster id: the storage tool's `format -t <id>` reads an
// id starting with `-` as an option, so no id may start with one.
import assert from 'node:assert/strict';
import { newClusterId } from '../../../scripts/kafka.mjs';

describe('scripts/kafka', () => {
  it('makes cluster ids of 16 random bytes in unpadded base64url, none starting with "-"', () => {
    const ids = new Set<string>();
    // Without the check, 1 id in 64 starts with "-": 10,000 draws would all but surely hold one.
    for (let i = 0; i < 10_000; i++) {
      const id = newClusterId() as string;
      assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
      ids.add(id);
    }
    assert.equal(ids.size, 10_000);
  });
});
