#!/usr/bin/python3
"""An S3 client we did not write (Debian's python3-boto3, run under /usr/bin/python3) for the
tests: it checks what the store behaves like and reads back what the server wrote.

Usage: s3_client.py ENV_FILE COMMAND [args]; prints one JSON object. ENV_FILE is the
`endpoint=... access_key=... secret_key=... region=...` file tests/s3/rgw.sh writes (DIR/env).
Path-style addressing, SigV4.
Commands:
  mkbucket B                create bucket B (an existing one of ours is fine)
  put B KEY DATA [--if-none-match]
                            PUT DATA (text) at KEY, with `If-None-Match: *` when asked;
                            reports {status, etag} (412 is a status, not an error)
  get B KEY                 {status, body} (404 is a status)
  race B KEY N ROUNDS       ROUNDS times: N threads, each with its own client, released
                            together by a barrier, PUT with If-None-Match: * on KEY.rROUND a
                            body naming the writer; reports per round the statuses, the
                            winner and the body read back afterwards
  fill B PREFIX N           PUT N small objects PREFIX0000 .. (body: the key)
  list B PREFIX PAGE        ListObjectsV2 with MaxKeys=PAGE, following continuation tokens;
                            reports {keys, pages}
  multipart B KEY PARTS MB  multipart upload of PARTS parts of MB MiB each (the last one
                            shorter), then reads it back; reports {status, size, sha256,
                            sha256_sent, etag}
  quirks B                  what a commit protocol must not rely on in RGW 16.2: reports the
                            status of a PUT with If-Match: the quoted ETag, then the unquoted
                            one; and whether If-None-Match: * is honoured on a server-side
                            copy and on CompleteMultipartUpload onto an existing key
  copy-out B PREFIX DIR     downloads every object under PREFIX into DIR (keys as paths)
"""
import hashlib
import json
import os
import sys
import threading

import boto3
import botocore.config
import botocore.exceptions


def client(env):
    cfg = botocore.config.Config(s3={'addressing_style': 'path'}, signature_version='s3v4',
                                 retries={'max_attempts': 1})
    return boto3.client('s3', endpoint_url=env['endpoint'], aws_access_key_id=env['access_key'],
                        aws_secret_access_key=env['secret_key'],
                        region_name=env.get('region', 'us-east-1'), config=cfg)


def if_none_match(s3):
    """boto3 1.26 (Debian 12) has no IfNoneMatch parameter: the header is added before signing."""
    def add(request, **_):
        request.headers['If-None-Match'] = '*'
    s3.meta.events.register('before-sign.s3.PutObject', add)
    return s3


def status_of(e):
    return e.response.get('ResponseMetadata', {}).get('HTTPStatusCode') or 0


def put(s3, bucket, key, body):
    try:
        r = s3.put_object(Bucket=bucket, Key=key, Body=body)
        return {'status': 200, 'etag': r['ETag']}
    except botocore.exceptions.ClientError as e:
        return {'status': status_of(e), 'code': e.response['Error'].get('Code')}


def get(s3, bucket, key):
    try:
        r = s3.get_object(Bucket=bucket, Key=key)
        return {'status': 200, 'body': r['Body'].read().decode(errors='replace')}
    except botocore.exceptions.ClientError as e:
        return {'status': status_of(e), 'code': e.response['Error'].get('Code')}


def with_header(env, name, value):
    s3 = client(env)

    def add(request, **_):
        request.headers[name] = value
    s3.meta.events.register('before-sign.s3.*', add)
    return s3


def quirks(env, bucket):
    s3 = client(env)
    etag = s3.put_object(Bucket=bucket, Key='quirks/k', Body=b'a')['ETag']
    out = {'if_match_quoted': put(with_header(env, 'If-Match', etag), bucket, 'quirks/k', b'b')['status'],
           'if_match_unquoted': put(with_header(env, 'If-Match', etag.strip('"')), bucket, 'quirks/k',
                                    b'c')['status']}
    inm = with_header(env, 'If-None-Match', '*')
    s3.put_object(Bucket=bucket, Key='quirks/src', Body=b'src')
    try:
        inm.copy_object(Bucket=bucket, Key='quirks/k', CopySource={'Bucket': bucket, 'Key': 'quirks/src'})
        out['copy_if_none_match'] = 200
    except botocore.exceptions.ClientError as e:
        out['copy_if_none_match'] = status_of(e)
    up = s3.create_multipart_upload(Bucket=bucket, Key='quirks/k')
    r = s3.upload_part(Bucket=bucket, Key='quirks/k', UploadId=up['UploadId'], PartNumber=1, Body=b'mp')
    try:
        inm.complete_multipart_upload(Bucket=bucket, Key='quirks/k', UploadId=up['UploadId'],
                                      MultipartUpload={'Parts': [{'PartNumber': 1, 'ETag': r['ETag']}]})
        out['complete_if_none_match'] = 200
    except botocore.exceptions.ClientError as e:
        out['complete_if_none_match'] = status_of(e)
    out['body'] = get(s3, bucket, 'quirks/k').get('body')
    return out


def race(env, bucket, key, n, rounds):
    clients = [if_none_match(client(env)) for _ in range(n)]
    out = []
    for rnd in range(rounds):
        k = f'{key}.r{rnd}'
        barrier = threading.Barrier(n)
        res = [None] * n

        def writer(i):
            barrier.wait()
            res[i] = put(clients[i], bucket, k, f'writer {i}'.encode())
        ts = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        statuses = [r['status'] for r in res]
        winners = [i for i, r in enumerate(res) if r['status'] == 200]
        out.append({'key': k, 'statuses': statuses, 'winners': winners,
                    'body': get(clients[0], bucket, k).get('body')})
    return {'rounds': out}


def main():
    env = {}
    with open(sys.argv[1], encoding='utf-8') as f:
        for line in f:
            if '=' in line:
                k, v = line.strip().split('=', 1)
                env[k] = v
    cmd, args = sys.argv[2], sys.argv[3:]
    s3 = client(env)
    if cmd == 'mkbucket':
        try:
            s3.create_bucket(Bucket=args[0])
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        out = {'bucket': args[0]}
    elif cmd == 'put':
        if '--if-none-match' in args:
            if_none_match(s3)
        out = put(s3, args[0], args[1], args[2].encode())
    elif cmd == 'get':
        out = get(s3, args[0], args[1])
    elif cmd == 'race':
        out = race(env, args[0], args[1], int(args[2]), int(args[3]))
    elif cmd == 'fill':
        n = int(args[2])
        for i in range(n):
            k = f'{args[1]}{i:04d}'
            s3.put_object(Bucket=args[0], Key=k, Body=k.encode())
        out = {'objects': n}
    elif cmd == 'list':
        keys, pages, token = [], [], None
        while True:
            kw = {'Bucket': args[0], 'Prefix': args[1], 'MaxKeys': int(args[2])}
            if token:
                kw['ContinuationToken'] = token
            r = s3.list_objects_v2(**kw)
            page = [o['Key'] for o in r.get('Contents', [])]
            pages.append({'n': len(page), 'truncated': r['IsTruncated'],
                          'key_count': r['KeyCount']})
            keys += page
            if not r['IsTruncated']:
                break
            token = r['NextContinuationToken']
        out = {'keys': keys, 'pages': pages}
    elif cmd == 'multipart':
        bucket, key, nparts, mb = args[0], args[1], int(args[2]), int(args[3])
        up = s3.create_multipart_upload(Bucket=bucket, Key=key)
        sent = hashlib.sha256()
        parts = []
        for i in range(nparts):
            size = mb << 20 if i < nparts - 1 else (mb << 19) + 123
            body = hashlib.sha256(str(i).encode()).digest() * (size // 32) + b'x' * (size % 32)
            sent.update(body)
            r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up['UploadId'], PartNumber=i + 1,
                               Body=body)
            parts.append({'PartNumber': i + 1, 'ETag': r['ETag']})
        r = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up['UploadId'],
                                         MultipartUpload={'Parts': parts})
        got = s3.get_object(Bucket=bucket, Key=key)['Body'].read()
        head = s3.head_object(Bucket=bucket, Key=key)
        out = {'status': 200, 'etag': head['ETag'], 'complete_etag': r.get('ETag'), 'size': len(got),
               'sha256': hashlib.sha256(got).hexdigest(), 'sha256_sent': sent.hexdigest()}
    elif cmd == 'quirks':
        out = quirks(env, args[0])
    elif cmd == 'copy-out':
        bucket, prefix, dest = args
        n = 0
        for page in s3.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get('Contents', []):
                p = os.path.join(dest, o['Key'])
                os.makedirs(os.path.dirname(p), exist_ok=True)
                s3.download_file(bucket, o['Key'], p)
                n += 1
        out = {'objects': n}
    else:
        sys.exit(f'unknown command {cmd}')
    print(json.dumps(out))


if __name__ == '__main__':
    main()
