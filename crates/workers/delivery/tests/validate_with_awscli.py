#!/usr/bin/env python3
"""Runs the real `aws cloudtrail validate-logs` against digests in an S3-compatible server.

The AWS CLI runs unmodified as a subprocess. S3 calls go to AWS_ENDPOINT_URL_S3 (the
caller sets it); CloudTrail calls go to --endpoint-url, a stand-in for OpenTrail's API
served by this script on 127.0.0.1 that answers the two operations validate-logs makes,
exactly as OpenTrail must answer them:

* DescribeTrails: {"trailList": [{"TrailARN", "S3BucketName", "S3KeyPrefix", ...}]}
* ListPublicKeys: {"PublicKeyList": [...]}, the keys of --public-keys whose validity
  overlaps [StartTime, EndTime] of the request; each entry is given in wire form
  ({"Value": base64 of the blob, "ValidityStartTime": epoch seconds, ...}).

Exits with the CLI's status; the CLI's stdout and stderr pass through. Every request the
stand-in served is printed to stderr as `cloudtrail-request: <target> <body>`.
"""
import argparse
import http.server
import json
import os
import subprocess
import sys
import threading


def serve_cloudtrail(trail, entries):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get('Content-Length', 0)) or 0)
            target = self.headers.get('X-Amz-Target', '')
            request = json.loads(body or b'{}')
            sys.stderr.write(f'cloudtrail-request: {target} {json.dumps(request)}\n')
            operation = target.rsplit('.', 1)[-1]
            if operation == 'DescribeTrails':
                answer = {'trailList': [trail]}
            elif operation == 'ListPublicKeys':
                start = request.get('StartTime', 0)
                end = request.get('EndTime', 4102444800)
                answer = {'PublicKeyList': [
                    e for e in entries
                    if e['ValidityStartTime'] <= end and e['ValidityEndTime'] >= start
                ]}
            else:
                self.send_response(400)
                self.send_header('Content-Type', 'application/x-amz-json-1.1')
                payload = json.dumps({'__type': 'InvalidAction', 'message': operation}).encode()
                self.send_header('Content-Length', str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            payload = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header('Content-Type', 'application/x-amz-json-1.1')
            self.send_header('Content-Length', str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--aws', required=True, help='the aws executable')
    p.add_argument('--trail-arn', required=True)
    p.add_argument('--region', required=True)
    p.add_argument('--start-time', required=True)
    p.add_argument('--end-time', required=True)
    p.add_argument('--s3-bucket', required=True)
    p.add_argument('--s3-prefix')
    p.add_argument('--public-keys', required=True)
    args = p.parse_args()

    with open(args.public_keys) as f:
        entries = json.load(f)
    trail = {
        'Name': args.trail_arn.split('/')[-1],
        'TrailARN': args.trail_arn,
        'S3BucketName': args.s3_bucket,
        'HomeRegion': args.trail_arn.split(':')[3],
        'IsMultiRegionTrail': True,
        'IsOrganizationTrail': False,
        'LogFileValidationEnabled': True,
    }
    if args.s3_prefix:
        trail['S3KeyPrefix'] = args.s3_prefix
    server = serve_cloudtrail(trail, entries)
    try:
        endpoint = f'http://127.0.0.1:{server.server_address[1]}'
        command = [
            args.aws, 'cloudtrail', 'validate-logs',
            '--trail-arn', args.trail_arn,
            '--start-time', args.start_time,
            '--end-time', args.end_time,
            '--region', args.region,
            '--endpoint-url', endpoint,
            '--verbose',
        ]
        return subprocess.run(command, env=os.environ.copy()).returncode
    finally:
        server.shutdown()
        server.server_close()


if __name__ == '__main__':
    sys.exit(main())
