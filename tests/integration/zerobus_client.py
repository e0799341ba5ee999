#!/usr/bin/python3
"""A Zerobus client built only from the public proto and Debian's python3-grpcio: it proves
that runnel-server speaks the protocol to a gRPC stack we did not write.

Usage: zerobus_client.py ADDR MODE [options]; prints one JSON object with the results.
Modes:
  ingest     create a PersistentStream on --table, send --batches batches of --records
             runnel.v1.Record messages, wait for the ack of each, then resume the stream on a
             new call and report last_committed_offset
  ephemeral  the same over EphemeralStream
  status     open a stream the way --case says and report the gRPC status code (and the
             grpc-retry-pushback-ms trailer as pushback_ms, when there is one); cases:
             garbage, unknown-resume, unknown-method, oversize, gap, big-desc,
             recursive-desc, empty-token ("Bearer "), empty-auth (an empty authorization),
             negative-offset (a new stream's first batch at offset -1), write (create and
             send one batch), resume (resume --stream-id and send its next batch);
             --ephemeral makes status use EphemeralStream
  fill       create a PersistentStream and send up to --batches batches, each after the ack
             of the one before, until the server ends the call; report the acks, the status
             and pushback_ms (for the server's RESOURCE_EXHAUSTED under pressure)
  concurrent open --calls ingest calls at once on one channel (one HTTP/2 connection),
             each sending --batches batches; report every call's acks
  reopen     send --batches batches of --records as a Zerobus SDK does across a drain: on
             close_stream_signal stop sending, wait for the acks, end the call and create a
             new stream (retrying an open refused UNAVAILABLE) for the rest; seq runs on
             across streams; report the streams (id, first seq, batches), close_signals
  steady     fill until --stop-file exists (with --pause-ms between batches), printing
             {"ack": N} as each ack comes: a stream that runs across server reloads;
             fill and steady report latency_ms {n, p50, p99, max}, batch sent to its ack
  retire     the unary RetireStream call for --stream-id (table_name --table, unless
             --no-table-name); reports the gRPC status code (and details)
  continue   resume --stream-id (a PersistentStream made earlier, maybe on another server)
             and send the batches after the answered last_committed_offset up to
             --batches - 1 (batch b at offset b holds the records --records * b on, as ingest
             and fill made them), each after the ack of the one before, then half-close; a
             call ended UNAVAILABLE before the resume was answered (a server gone behind a
             load balancer) is made again, as an SDK reconnects, for up to --connect-timeout
             seconds; report resumed_at (-1 when the answer had no offset), the acks, the
             status and the calls made (attempts)
  slow-reader  not gRPC: a raw h2c connection (small SO_RCVBUF) that sends HTTP/2 PINGs
             and never reads the answers, for up to --pause-ms; report whether and when the
             server disconnected it
  health     fleet health reports: create a PersistentStream with the request header
             `runnel-health: 1` (not with --no-health-header), then for each --health
             REPORT (repeatable; the raw text sent as field 1001 runnel_agent_health, bytes
             as given: @FILE reads them from FILE, `oversize:N` is a JSON object of N bytes)
             send the report and then one batch of --records records, waiting for its ack;
             then --batches more batches; report stream_id, health_header (the server's
             answer header), reports, acks and the gRPC status code
With --json-file FILE, ingest sends JSON records instead (record_type JSON): the lines of
FILE, --records per batch, as many batches as it takes.
With --reading, ingest sends a message of its own (Reading: vehicle, ts, speed, rpm, tags,
pos{lat,lon}) built at run time from a hand-made DescriptorProto, as Zerobus SDK users do;
--bad-field adds a field `colour` no table has.
--payload-bytes N pads each runnel.v1.Record payload to N bytes (with --random-payload: random
hex digits, which compress only ~2x, instead of spaces); --pause-ms N makes ingest
wait that long after the stream is created, before its first batch (steady: between
batches); --device sets the records' device_id (default py-client); --scheme S sends the
token as `authorization: S <token>` (default Bearer). --undecodable makes every PROTO record
bytes that are not a runnel.v1.Record (an invalid wire type): kept raw by an envelope table.
TLS: --ca FILE makes the channel TLS (grpc.ssl_channel_credentials, ALPN h2) trusting FILE;
--cert FILE --key FILE add a client certificate (mTLS); --server-name overrides the name the
server certificate is checked against (default: the host of ADDR). A channel that does not
become ready within --connect-timeout seconds (a refused handshake) prints
{"connected": false, "error": ...} and exits 3.
OAuth: --token-url URL --client-id ID --client-secret S first gets an access token as the
Zerobus SDKs do (POST of grant_type=client_credentials, scope=all-apis, resource and
authorization_details naming --table's catalog, schema and table, HTTP Basic client id and
secret; over https trusting --ca when given) and then streams with it as --token; a refused
token request prints {"token_status": N, "token_error": ...} and exits 4.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, '..', '..', 'proto')


def load_protos():
    out = tempfile.mkdtemp(prefix='zb-py-')
    subprocess.check_call(['protoc', f'-I{PROTO}', '-I/usr/include', f'--python_out={out}',
                           'zerobus/zerobus_service.proto', 'runnel/v1/record.proto'])
    sys.path.insert(0, out)
    from zerobus import zerobus_service_pb2 as zb
    from runnel.v1 import record_pb2 as rec
    return zb, rec


def fetch_token(a):
    """The client-credentials request of the Zerobus SDKs (reference section 4): returns
    the access_token, or prints the refusal and exits 4."""
    import base64
    import ssl
    import urllib.error
    import urllib.parse
    import urllib.request
    cat, sch, _ = a.table.split('.', 2)
    priv = 'unity_catalog_privileges'
    details = [
        {'type': priv, 'privileges': ['USE CATALOG'], 'object_type': 'CATALOG',
         'object_full_path': cat},
        {'type': priv, 'privileges': ['USE SCHEMA'], 'object_type': 'SCHEMA',
         'object_full_path': f'{cat}.{sch}'},
        {'type': priv, 'privileges': ['SELECT', 'MODIFY'], 'object_type': 'TABLE',
         'object_full_path': a.table, 'operations': ['zerobuswrite']},
    ]
    body = urllib.parse.urlencode({
        'grant_type': 'client_credentials', 'scope': 'all-apis',
        'resource': 'api://databricks/workspaces/1/zerobusDirectWriteApi',
        'authorization_details': json.dumps(details)}).encode()
    basic = base64.b64encode(f'{a.client_id}:{a.client_secret}'.encode()).decode()
    req = urllib.request.Request(a.token_url, data=body, method='POST', headers={
        'Content-Type': 'application/x-www-form-urlencoded', 'Authorization': f'Basic {basic}'})
    ctx = ssl.create_default_context(cafile=a.ca) if a.ca else None
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return json.loads(r.read())['access_token']
    except urllib.error.HTTPError as e:
        try:
            err = json.loads(e.read()).get('error')
        except ValueError:
            err = None
        print(json.dumps({'token_status': e.code, 'token_error': err}))
        sys.exit(4)


def pushback_of(err):
    """The grpc-retry-pushback-ms trailer of a failed call, as {'pushback_ms': N} or {}."""
    try:
        md = list(err.trailing_metadata() or [])
    except Exception:  # noqa: BLE001 - not every RpcError carries metadata
        md = []
    for k, v in md:
        if k == 'grpc-retry-pushback-ms':
            return {'pushback_ms': int(v)}
    return {}


def slow_reader(addr, limit_ms):
    """A client that does not read its responses: every PING it sends makes the server queue
    a PING ACK it will never take. Returns when the server drops the connection."""
    import socket
    import struct

    def frame(t, f, sid, p=b''):
        return struct.pack('>I', len(p))[1:] + bytes([t, f]) + struct.pack('>I', sid) + p

    host, port = addr.rsplit(':', 1)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, int(port)))
    s.sendall(b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + frame(4, 0, 0))
    buf = b''
    while True:  # the server's SETTINGS: the last thing this client ever reads
        while len(buf) < 9:
            buf += s.recv(4096)
        n = int.from_bytes(buf[:3], 'big')
        while len(buf) < 9 + n:
            buf += s.recv(4096)
        t, f = buf[3], buf[4]
        buf = buf[9 + n:]
        if t == 4 and not f & 1:
            break
    s.sendall(frame(4, 1, 0))
    pings = frame(6, 0, 0, b'\0' * 8) * 4096
    pending = b''
    sent = 0
    closed = False
    s.settimeout(0.2)
    t0 = time.monotonic()
    while (time.monotonic() - t0) * 1000 < limit_ms:
        if not pending:
            pending = pings
        try:
            n = s.send(pending)
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
        pending = pending[n:]
        sent += n
    out = {'closed': closed, 'after_ms': int((time.monotonic() - t0) * 1000), 'sent': sent}
    s.close()
    return out


def main():
    import grpc
    from google.protobuf import descriptor_pb2
    ap = argparse.ArgumentParser()
    ap.add_argument('addr')
    ap.add_argument('mode')
    ap.add_argument('--table', default='main.default.telemetry')
    ap.add_argument('--records', type=int, default=10)
    ap.add_argument('--batches', type=int, default=3)
    ap.add_argument('--token')
    ap.add_argument('--case', default='')
    ap.add_argument('--json-file')
    ap.add_argument('--reading', action='store_true')
    ap.add_argument('--bad-field', action='store_true')
    ap.add_argument('--undecodable', action='store_true')
    ap.add_argument('--payload-bytes', type=int, default=0)
    ap.add_argument('--random-payload', action='store_true')
    ap.add_argument('--pause-ms', type=int, default=0)
    ap.add_argument('--calls', type=int, default=2)
    ap.add_argument('--stop-file')
    ap.add_argument('--device', default='py-client')
    ap.add_argument('--scheme', default='Bearer')
    ap.add_argument('--ca')
    ap.add_argument('--cert')
    ap.add_argument('--key')
    ap.add_argument('--server-name')
    ap.add_argument('--connect-timeout', type=float, default=10)
    ap.add_argument('--ephemeral', action='store_true')
    ap.add_argument('--stream-id')
    ap.add_argument('--no-table-name', action='store_true')
    ap.add_argument('--token-url')
    ap.add_argument('--client-id')
    ap.add_argument('--client-secret')
    ap.add_argument('--health', action='append', default=[])
    ap.add_argument('--no-health-header', action='store_true')
    a = ap.parse_args()
    if a.token_url:
        a.token = fetch_token(a)
    if a.mode == 'slow-reader':
        print(json.dumps(slow_reader(a.addr, a.pause_ms or 20000)))
        return
    zb, rec = load_protos()
    desc = descriptor_pb2.DescriptorProto()
    rec.Record.DESCRIPTOR.CopyToProto(desc)
    if a.ca:
        def rd(f):
            with open(f, 'rb') as fh:
                return fh.read()
        creds = grpc.ssl_channel_credentials(root_certificates=rd(a.ca),
                                             private_key=rd(a.key) if a.key else None,
                                             certificate_chain=rd(a.cert) if a.cert else None)
        opts = [('grpc.ssl_target_name_override', a.server_name)] if a.server_name else []
        ch = grpc.secure_channel(a.addr, creds, options=opts)
    else:
        ch = grpc.insecure_channel(a.addr)
    try:
        grpc.channel_ready_future(ch).result(timeout=a.connect_timeout)
    except grpc.FutureTimeoutError:
        print(json.dumps({'connected': False, 'error': 'channel not ready (handshake refused?)'}))
        sys.exit(3)
    md = [('x-databricks-zerobus-table-name', a.table)]
    if a.token:
        md.append(('authorization', f'{a.scheme} {a.token}'))
    persistent = a.mode != 'ephemeral' and not a.ephemeral
    method = 'PersistentStream' if persistent else 'EphemeralStream'
    Req = zb.PersistentStreamRequest if persistent else zb.EphemeralStreamRequest
    Resp = zb.PersistentStreamResponse if persistent else zb.EphemeralStreamResponse
    call = ch.stream_stream(f'/databricks.zerobus.Zerobus/{method}',
                            request_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString(),
                            response_deserializer=Resp.FromString)

    if a.mode == 'retire':
        retire = ch.unary_unary('/databricks.zerobus.Zerobus/RetireStream',
                                request_serializer=lambda m: m.SerializeToString(),
                                response_deserializer=zb.RetireStreamResponse.FromString)
        req = zb.RetireStreamRequest(stream_id=a.stream_id or '')
        if not a.no_table_name:
            req.table_name = a.table
        try:
            retire(req, metadata=md, timeout=30)
            print(json.dumps({'code': 'OK'}))
        except grpc.RpcError as e:
            print(json.dumps({'code': e.code().name, 'details': e.details()}))
        return

    reading = None
    if a.reading:
        from google.protobuf import descriptor_pb2 as dp, descriptor_pool, message_factory
        F = dp.FieldDescriptorProto
        d = dp.DescriptorProto(name='Reading')
        pos = d.nested_type.add(name='Pos')
        pos.field.add(name='lat', number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
        pos.field.add(name='lon', number=2, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
        d.field.add(name='vehicle', number=1, type=F.TYPE_STRING, label=F.LABEL_REQUIRED)
        d.field.add(name='ts', number=2, type=F.TYPE_INT64, label=F.LABEL_REQUIRED)
        d.field.add(name='speed', number=3, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL)
        d.field.add(name='rpm', number=4, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
        d.field.add(name='tags', number=5, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
        d.field.add(name='pos', number=6, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                    type_name='.runnel.test.Reading.Pos')
        if a.bad_field:
            d.field.add(name='colour', number=7, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
        fdp = dp.FileDescriptorProto(name='reading_test.proto', package='runnel.test',
                                     syntax='proto2')
        fdp.message_type.add().CopyFrom(d)
        pool = descriptor_pool.DescriptorPool()
        pool.Add(fdp)
        md_ = pool.FindMessageTypeByName('runnel.test.Reading')
        reading = message_factory.MessageFactory(pool).GetPrototype(md_)
        desc = d

    json_lines = None
    if a.json_file:
        with open(a.json_file, encoding='utf-8') as f:
            json_lines = [line.rstrip('\n') for line in f if line.strip()]
        a.batches = (len(json_lines) + a.records - 1) // a.records

    def create_req(table=a.table):
        if json_lines is not None:
            c = zb.CreateIngestStreamRequest(table_name=table, record_type=zb.JSON)
        else:
            c = zb.CreateIngestStreamRequest(table_name=table,
                                             descriptor_proto=desc.SerializeToString(),
                                             record_type=zb.PROTO)
        if persistent:
            return Req(create_stream=zb.CreatePersistentStreamRequest(create_stream=c))
        return Req(create_stream=c)

    def batch_req(off, n, base):
        if json_lines is not None:
            return Req(ingest_record_batch=zb.IngestRecordBatchRequest(
                offset_id=off, json_batch=zb.JsonRecordBatch(records=json_lines[base:base + n])))
        if reading is not None:
            recs = []
            for i in range(base, base + n):
                m = reading(vehicle='veh-%d' % (i % 3), ts=1795600800000000 + i * 1000000,
                            speed=i / 2, rpm=800 + i, tags=['a', 't%d' % i] if i % 5 else [])
                m.pos.lat = 52.5 + i / 1000
                m.pos.lon = 13.4
                recs.append(m.SerializeToString())
            return Req(ingest_record_batch=zb.IngestRecordBatchRequest(
                offset_id=off, proto_encoded_batch=zb.ProtoEncodedRecordBatch(records=recs)))
        if a.undecodable:  # field 1 with wire type 7, which does not exist
            recs = [b'\x0f' + str(base + i).encode() for i in range(n)]
            return Req(ingest_record_batch=zb.IngestRecordBatchRequest(
                offset_id=off, proto_encoded_batch=zb.ProtoEncodedRecordBatch(records=recs)))
        def payload(k):
            p = f'python record {k}'.encode()
            if a.payload_bytes <= len(p):
                return p
            n = a.payload_bytes - len(p)
            pad = os.urandom((n + 1) // 2).hex()[:n].encode() if a.random_payload else b' ' * n
            return p + pad
        recs = [rec.Record(device_id=a.device, source='grpcio', topic='python',
                           event_time_us=int(time.time() * 1e6), seq=base + i,
                           payload=payload(base + i)).SerializeToString()
                for i in range(n)]
        return Req(ingest_record_batch=zb.IngestRecordBatchRequest(
            offset_id=off, proto_encoded_batch=zb.ProtoEncodedRecordBatch(records=recs)))

    if a.mode == 'status':
        msgs = []
        table = a.table
        if a.case == 'empty-token':  # what a client with an unset token variable sends
            md = [m for m in md if m[0] != 'authorization'] + [('authorization', 'Bearer ')]
        elif a.case == 'empty-auth':
            md = [m for m in md if m[0] != 'authorization'] + [('authorization', '')]
        if a.case in ('empty-token', 'empty-auth'):
            msgs = [create_req(table)]
        elif a.case == 'garbage':
            msgs = [create_req(), b'\xff\xff\xff\xff']
        elif a.case == 'unknown-resume':
            msgs = [Req(resume_stream=zb.ResumeIngestStreamRequest(stream_id='no-such-stream'))]
        elif a.case == 'unknown-method':
            call = ch.stream_stream('/databricks.zerobus.Zerobus/NoSuchMethod',
                                    request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=Resp.FromString)
            msgs = [create_req()]
        elif a.case == 'oversize':
            big = rec.Record(payload=b'x' * (11 << 20)).SerializeToString()
            msgs = [create_req(), Req(ingest_record_batch=zb.IngestRecordBatchRequest(
                offset_id=0, proto_encoded_batch=zb.ProtoEncodedRecordBatch(records=[big])))]
        elif a.case == 'gap':
            msgs = [create_req(), batch_req(5, 1, 0)]
        elif a.case == 'write':
            msgs = [create_req(), batch_req(0, a.records, 0)]
        elif a.case == 'resume':
            msgs = [Req(resume_stream=zb.ResumeIngestStreamRequest(stream_id=a.stream_id,
                                                                   record_type=zb.PROTO)),
                    batch_req(a.batches, a.records, 0)]
        elif a.case == 'negative-offset':
            msgs = [create_req(), batch_req(-1, 1, 0)]
        elif a.case in ('big-desc', 'recursive-desc'):
            F = descriptor_pb2.FieldDescriptorProto
            d = descriptor_pb2.DescriptorProto(name='Huge' if a.case == 'big-desc' else 'Node')
            if a.case == 'big-desc':
                for i in range(3000):
                    d.field.add(name='f%d' % i, number=i + 1, type=F.TYPE_INT32,
                                label=F.LABEL_OPTIONAL)
            else:
                d.field.add(name='next', number=1, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                            type_name='.Node')
            c = zb.CreateIngestStreamRequest(table_name=table, descriptor_proto=d.SerializeToString(),
                                             record_type=zb.PROTO)
            msgs = [Req(create_stream=zb.CreatePersistentStreamRequest(create_stream=c))]
        else:
            msgs = [create_req(table)]
        try:
            for r in call(iter(msgs), metadata=md, timeout=10):
                pass
            print(json.dumps({'code': 'OK'}))
        except grpc.RpcError as e:
            print(json.dumps({'code': e.code().name, 'details': e.details(),
                              **pushback_of(e)}))
        return

    if a.mode in ('fill', 'steady'):
        import queue
        acks = queue.Queue()
        out = {'acks': [], 'stream_id': None, 'code': 'OK'}
        steady = a.mode == 'steady'
        lat = []  # ms from sending each batch to its ack

        def requests():
            yield create_req()
            b = 0
            while (not steady and b < a.batches) or \
                    (steady and not (a.stop_file and os.path.exists(a.stop_file))):
                t0 = time.monotonic()
                yield batch_req(b, a.records, b * a.records)
                got = acks.get(timeout=30)
                if got is None:
                    return
                lat.append((time.monotonic() - t0) * 1000)
                out['acks'].append(got)
                b += 1
                if steady and a.pause_ms:
                    time.sleep(a.pause_ms / 1000)

        try:
            for r in call(requests(), metadata=md, timeout=600 if steady else 120):
                kind = r.WhichOneof('payload')
                if kind == 'create_stream_response':
                    out['stream_id'] = r.create_stream_response.stream_id
                    if steady:
                        print(json.dumps({'stream_id': out['stream_id']}), flush=True)
                elif kind == 'ingest_record_response':
                    v = r.ingest_record_response.durability_ack_up_to_offset
                    if steady:
                        print(json.dumps({'ack': v}), flush=True)
                    acks.put(v)
                elif kind == 'close_stream_signal':
                    d = r.close_stream_signal.duration.seconds
                    out['close_signal'] = d
                    if steady:
                        print(json.dumps({'close_signal': d}), flush=True)
        except grpc.RpcError as e:
            out.update({'code': e.code().name, 'details': e.details(), **pushback_of(e)})
        acks.put(None)
        if lat:
            s_ = sorted(lat)
            out['latency_ms'] = {'n': len(s_), 'p50': round(s_[len(s_) // 2], 2),
                                 'p99': round(s_[min(len(s_) - 1, int(len(s_) * 0.99))], 2),
                                 'max': round(s_[-1], 2)}
        print(json.dumps(out))
        return

    if a.mode == 'continue':
        import queue
        out = {'acks': [], 'resumed_at': None, 'code': 'OK', 'attempts': 0}
        deadline = time.monotonic() + a.connect_timeout
        rtype = zb.JSON if json_lines is not None else zb.PROTO
        while True:
            out['attempts'] += 1
            acks = queue.Queue()
            resumed = queue.Queue()

            def requests():
                yield Req(resume_stream=zb.ResumeIngestStreamRequest(stream_id=a.stream_id,
                                                                     record_type=rtype))
                got = resumed.get(timeout=30)
                if got is None:
                    return
                for b in range(got + 1, a.batches):
                    yield batch_req(b, a.records, b * a.records)
                    v = acks.get(timeout=30)
                    if v is None:
                        return
                    out['acks'].append(v)

            try:
                for r in call(requests(), metadata=md, timeout=120):
                    kind = r.WhichOneof('payload')
                    if kind == 'resume_stream_response':
                        rr = r.resume_stream_response
                        v = rr.last_committed_offset if rr.HasField('last_committed_offset') else -1
                        out['resumed_at'] = v
                        resumed.put(v)
                    elif kind == 'ingest_record_response':
                        acks.put(r.ingest_record_response.durability_ack_up_to_offset)
                break
            except grpc.RpcError as e:
                resumed.put(None)
                acks.put(None)
                if (e.code() == grpc.StatusCode.UNAVAILABLE and out['resumed_at'] is None
                        and time.monotonic() < deadline):
                    time.sleep(0.2)  # the client's reconnect backoff
                    continue
                out.update({'code': e.code().name, 'details': e.details()})
                break
        print(json.dumps(out))
        return

    if a.mode == 'concurrent':
        import threading
        results = [None] * a.calls

        def one(i):
            got = []
            try:
                def reqs():
                    yield create_req()
                    for b in range(a.batches):
                        yield batch_req(b, a.records, b * a.records)
                for r in call(reqs(), metadata=md, timeout=60):
                    if r.WhichOneof('payload') == 'ingest_record_response':
                        got.append(r.ingest_record_response.durability_ack_up_to_offset)
                results[i] = {'code': 'OK', 'acks': got}
            except grpc.RpcError as e:
                results[i] = {'code': e.code().name, 'details': e.details(), 'acks': got}

        threads = [threading.Thread(target=one, args=(i,)) for i in range(a.calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(json.dumps({'calls': results}))
        return

    if a.mode == 'reopen':
        # As Zerobus SDKs do on close_stream_signal: stop sending, wait for the acks, end the
        # call, open a new stream (UNAVAILABLE at open: retry) and go on with the records not
        # acked, until batches x records are acked. One batch in flight; seq runs on across
        # streams. Prints {"stream_id"} per stream, {"close_signal"}, then the result.
        import queue
        total = a.batches
        done = 0  # batches acked, over every stream
        out = {'streams': [], 'close_signals': 0, 'open_refused': 0, 'code': 'OK'}
        tries = 0
        while done < total:
            acks = queue.Queue()
            closing = [False]
            sent_here = [0]

            def requests():
                yield create_req()
                off = 0
                while done + off < total and not closing[0]:
                    yield batch_req(off, a.records, (done + off) * a.records)
                    sent_here[0] += 1
                    got = acks.get(timeout=30)
                    if got is None:
                        return
                    off += 1
                    if a.pause_ms:
                        time.sleep(a.pause_ms / 1000)

            sid = None
            acked_here = -1
            try:
                for r in call(requests(), metadata=md, timeout=120):
                    kind = r.WhichOneof('payload')
                    if kind == 'create_stream_response':
                        sid = r.create_stream_response.stream_id
                        print(json.dumps({'stream_id': sid}), flush=True)
                    elif kind == 'ingest_record_response':
                        acked_here = r.ingest_record_response.durability_ack_up_to_offset
                        acks.put(acked_here)
                    elif kind == 'close_stream_signal':
                        closing[0] = True
                        out['close_signals'] += 1
                        print(json.dumps({'close_signal':
                                          r.close_stream_signal.duration.seconds}), flush=True)
                code = 'OK'
            except grpc.RpcError as e:
                code = e.code().name
                if code != 'UNAVAILABLE':
                    out.update({'code': code, 'details': e.details()})
                    break
            acks.put(None)
            if sid is None:
                out['open_refused'] += 1
                tries += 1
                if tries > 600:
                    out['code'] = 'GAVE_UP'
                    break
                time.sleep(0.05)
                continue
            out['streams'].append({'stream_id': sid, 'first_seq': done * a.records,
                                   'batches': acked_here + 1, 'end': code})
            done += acked_here + 1
        out['batches_acked'] = done
        print(json.dumps(out))
        return

    if a.mode == 'health':
        import queue

        def varint(v):
            out = b''
            while True:
                b7 = v & 0x7f
                v >>= 7
                if v:
                    out += bytes([b7 | 0x80])
                else:
                    return out + bytes([b7])

        def report_bytes(r):
            if r.startswith('@'):
                with open(r[1:], 'rb') as fh:
                    return fh.read()
            if r.startswith('oversize:'):
                n = int(r.split(':', 1)[1])
                pad = n - len('{"v":1,"pad":""}')
                return ('{"v":1,"pad":"' + 'x' * pad + '"}').encode()
            return r.encode('utf-8', 'surrogateescape')

        hmd = list(md) + ([] if a.no_health_header else [('runnel-health', '1')])
        events = queue.Queue()
        out = {'acks': [], 'reports': 0}

        def hrequests():
            yield create_req()
            events.get(timeout=20)  # the create's answer
            off = 0
            for r in a.health:
                body = report_bytes(r)
                yield varint((1001 << 3) | 2) + varint(len(body)) + body
                out['reports'] += 1
                yield batch_req(off, a.records, off * a.records)
                out['acks'].append(events.get(timeout=20))
                off += 1
            for _ in range(a.batches):
                yield batch_req(off, a.records, off * a.records)
                out['acks'].append(events.get(timeout=20))
                off += 1

        it = call(hrequests(), metadata=hmd, timeout=60)
        try:
            out['health_header'] = any(k == 'runnel-health' and v == '1'
                                       for k, v in (it.initial_metadata() or []))
            for r in it:
                kind = r.WhichOneof('payload')
                if kind == 'create_stream_response':
                    out['stream_id'] = r.create_stream_response.stream_id
                    events.put(None)
                elif kind == 'ingest_record_response':
                    events.put(r.ingest_record_response.durability_ack_up_to_offset)
            out['code'] = 'OK'
        except grpc.RpcError as e:
            out['code'] = e.code().name
            out['details'] = e.details()
        print(json.dumps(out))
        return

    # ingest / ephemeral: a generator that waits for each ack before the next batch
    import queue
    acks = queue.Queue()
    result = {'acks': []}

    def requests():
        yield create_req()
        if a.pause_ms:
            time.sleep(a.pause_ms / 1000)
        for b in range(a.batches):
            yield batch_req(b, a.records, b * a.records)
            got = acks.get(timeout=20)
            result['acks'].append(got)

    stream_id = None
    for r in call(requests(), metadata=md, timeout=60):
        kind = r.WhichOneof('payload')
        if kind == 'create_stream_response':
            stream_id = r.create_stream_response.stream_id
        elif kind == 'ingest_record_response':
            acks.put(r.ingest_record_response.durability_ack_up_to_offset)
    result['stream_id'] = stream_id
    if persistent:
        resume = ch.stream_stream('/databricks.zerobus.Zerobus/PersistentStream',
                                  request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=Resp.FromString)
        req = Req(resume_stream=zb.ResumeIngestStreamRequest(
            stream_id=stream_id, record_type=zb.JSON if json_lines is not None else zb.PROTO))
        for r in resume(iter([req]), metadata=md, timeout=20):
            if r.WhichOneof('payload') == 'resume_stream_response':
                rr = r.resume_stream_response
                result['last_committed_offset'] = rr.last_committed_offset if rr.HasField('last_committed_offset') else None
    print(json.dumps(result))


if __name__ == '__main__':
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    # The answer is printed: leave without the interpreter's finalization, where grpcio's
    # objects can deadlock in their destructors (seen on a loaded machine: the process hung
    # in Py_FinalizeEx for minutes after printing its result).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
