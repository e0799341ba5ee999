#!/usr/bin/python3
"""A Zerobus client built only from the public proto and Debian's python3-grpcio: it proves
that runnel-server speaks the protocol to a gRPC stack we did not write.

Usage: zerobus_client.py ADDR MODE [options]; prints one JSON object with the results.
Modes:
  ingest     create a PersistentStream on --table, send --batches batches of --records
             runnel.v1.Record messages, wait for the ack of each, then resume the stream on a
             new call and report last_committed_offset
  ephemeral  the same over EphemeralStream
  status     open a stream the way --case says and report the gRPC status code
With --json-file FILE, ingest sends JSON records instead (record_type JSON): the lines of
FILE, --records per batch, as many batches as it takes.
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
    a = ap.parse_args()
    zb, rec = load_protos()
    desc = descriptor_pb2.DescriptorProto()
    rec.Record.DESCRIPTOR.CopyToProto(desc)
    ch = grpc.insecure_channel(a.addr)
    grpc.channel_ready_future(ch).result(timeout=10)
    md = [('x-databricks-zerobus-table-name', a.table)]
    if a.token:
        md.append(('authorization', f'Bearer {a.token}'))
    persistent = a.mode != 'ephemeral'
    method = 'PersistentStream' if persistent else 'EphemeralStream'
    Req = zb.PersistentStreamRequest if persistent else zb.EphemeralStreamRequest
    Resp = zb.PersistentStreamResponse if persistent else zb.EphemeralStreamResponse
    call = ch.stream_stream(f'/databricks.zerobus.Zerobus/{method}',
                            request_serializer=lambda m: m if isinstance(m, bytes) else m.SerializeToString(),
                            response_deserializer=Resp.FromString)

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
        recs = [rec.Record(device_id='py-client', source='grpcio', topic='python',
                           event_time_us=int(time.time() * 1e6), seq=base + i,
                           payload=f'python record {base + i}'.encode()).SerializeToString()
                for i in range(n)]
        return Req(ingest_record_batch=zb.IngestRecordBatchRequest(
            offset_id=off, proto_encoded_batch=zb.ProtoEncodedRecordBatch(records=recs)))

    if a.mode == 'status':
        msgs = []
        table = a.table
        if a.case == 'garbage':
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
        else:
            msgs = [create_req(table)]
        try:
            for r in call(iter(msgs), metadata=md, timeout=10):
                pass
            print(json.dumps({'code': 'OK'}))
        except grpc.RpcError as e:
            print(json.dumps({'code': e.code().name, 'details': e.details()}))
        return

    # ingest / ephemeral: a generator that waits for each ack before the next batch
    import queue
    acks = queue.Queue()
    result = {'acks': []}

    def requests():
        yield create_req()
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
    main()
