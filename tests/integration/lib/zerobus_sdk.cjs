// The official Databricks Zerobus SDK (its native Node module, Rust: reqwest + tonic over
// rustls) as a stock client: `node zerobus_sdk.cjs ENDPOINT UC_URL TABLE CLIENT_ID SECRET N`
// creates a JSON stream with client id + secret (the SDK POSTs to UC_URL/oidc/v1/token
// itself), ingests N records {id, src: "sdk"}, waits for the last ack, flushes, closes, and
// prints {"last_offset": N - 1, "distinct": N}; a failure prints {"error": message} and exits 2. The server's
// CA comes from SSL_CERT_FILE (rustls-native-certs reads it).
const { ZerobusSdk, RecordType } = require('@databricks/zerobus-ingest-sdk-linux-x64-gnu');

(async () => {
  const [endpoint, ucUrl, tableName, clientId, secret, n] = process.argv.slice(2);
  const sdk = new ZerobusSdk(endpoint, ucUrl);
  const stream = await sdk.createStream({ tableName }, clientId, secret, { recordType: RecordType.Json, recovery: false });
  // each call's promise resolves to the offset the SDK gave that record once it is acked;
  // the SDK's tasks may take offsets in another order than the calls were made, so the
  // highest of all of them is the last offset (and every offset is given once)
  const acks = [];
  for (let i = 0; i < Number(n); i++) acks.push(stream.ingestRecord({ id: i, src: 'sdk' }));
  const offs = (await Promise.all(acks)).map(Number);
  await stream.flush();
  await stream.close();
  console.log(JSON.stringify({ last_offset: Math.max(...offs), distinct: new Set(offs).size }));
  process.exit(0);
})().catch((e) => {
  console.log(JSON.stringify({ error: String(e && e.message) }));
  process.exit(2);
});
