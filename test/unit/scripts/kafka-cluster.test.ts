// The test cluster's layout: ports, directories and each node's broker settings.
import assert from 'node:assert/strict';
import { clusterSettings, NODE_IDS, nodeProperties } from '../../../scripts/kafka-cluster.mjs';

/** key=value lines of a properties text, comments left out. */
function parse(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0 && !line.startsWith('#')) out.set(line.slice(0, at), line.slice(at + 1));
  }
  return out;
}

describe('scripts/kafka-cluster', () => {
  it('lays three nodes out on nine ports from KAFKA_CLUSTER_PORT, each in its own directory', () => {
    const s = clusterSettings({ KAFKA_CLUSTER_PORT: '20000', KAFKA_CLUSTER_HOME_DIR: '/tmp/c' });
    assert.deepEqual(NODE_IDS, [1, 2, 3]);
    const ports = s.nodes.flatMap((n) => [n.port, n.controllerPort, n.saslSslPort]).sort((a, b) => a - b);
    assert.deepEqual(ports, [20000, 20001, 20002, 20003, 20004, 20005, 20006, 20007, 20008]);
    assert.equal(s.brokers, '127.0.0.1:20000,127.0.0.1:20001,127.0.0.1:20002');
    assert.equal(s.saslSslBrokers, '127.0.0.1:20006,127.0.0.1:20007,127.0.0.1:20008');
    assert.deepEqual(
      s.nodes.map((n) => n.dataDir),
      ['/tmp/c/node-1/data', '/tmp/c/node-2/data', '/tmp/c/node-3/data'],
    );
    assert.equal(s.caFile, '/tmp/c/tls/ca.pem');
    assert.throws(() => clusterSettings({ KAFKA_CLUSTER_PORT: 'x' }), /KAFKA_CLUSTER_PORT must be a port number/);
  });

  it('makes every node a broker and a voter of one 3-voter quorum, with RF 3 and min.insync.replicas 2 by default', () => {
    const s = clusterSettings({ KAFKA_CLUSTER_PORT: '19450', KAFKA_CLUSTER_HOME_DIR: '/tmp/c' });
    const all = s.nodes.map((n) => parse(nodeProperties(s, n, 'ks-pass')));
    for (const [i, p] of all.entries()) {
      assert.equal(p.get('node.id'), String(i + 1));
      assert.equal(p.get('process.roles'), 'broker,controller');
      assert.equal(p.get('controller.quorum.voters'), '1@127.0.0.1:19453,2@127.0.0.1:19454,3@127.0.0.1:19455');
      assert.equal(p.get('default.replication.factor'), '3');
      assert.equal(p.get('min.insync.replicas'), '2');
      assert.equal(p.get('offsets.topic.replication.factor'), '3');
      assert.equal(p.get('auto.create.topics.enable'), 'false');
      assert.equal(p.get('inter.broker.listener.name'), 'PLAINTEXT');
      assert.equal(
        p.get('listeners'),
        `PLAINTEXT://127.0.0.1:${19450 + i},CONTROLLER://127.0.0.1:${19453 + i},SASL_SSL://127.0.0.1:${19456 + i}`,
      );
      assert.equal(p.get('listener.name.sasl_ssl.sasl.enabled.mechanisms'), 'SCRAM-SHA-512');
      assert.equal(p.get('ssl.keystore.password'), 'ks-pass');
      assert.equal(p.get('log.dirs'), `/tmp/c/node-${i + 1}/data`);
    }
  });
});
