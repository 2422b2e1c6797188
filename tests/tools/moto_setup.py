"""Makes what the `aws` integration tests call in a moto server, then turns on its
signature checks.

    moto_setup.py ENDPOINT

Creates an IAM user with an access key allowed everything, an SQS queue `orders`, a
DynamoDB table `items` (key `id`, a string), a Step Functions state machine `fulfil` (one
Pass state), a Kinesis stream `clicks` and an S3 bucket `uploads`, then resets moto's auth
so that from here on every request must be signed with that key. Prints one JSON object:
access_key, secret_key, account, queue_url, state_machine.
"""

import json
import sys
import urllib.request

import boto3

endpoint = sys.argv[1]


def client(service):
    # Before auth is turned on moto takes any key.
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )


iam = client("iam")
iam.create_user(UserName="edgeway")
key = iam.create_access_key(UserName="edgeway")["AccessKey"]
iam.put_user_policy(
    UserName="edgeway",
    PolicyName="everything",
    PolicyDocument=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
    ),
)
queue_url = client("sqs").create_queue(QueueName="orders")["QueueUrl"]
client("dynamodb").create_table(
    TableName="items",
    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST",
)
state_machine = client("stepfunctions").create_state_machine(
    name="fulfil",
    definition=json.dumps(
        {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    ),
    roleArn="arn:aws:iam::123456789012:role/fulfil",
)["stateMachineArn"]
client("kinesis").create_stream(StreamName="clicks", ShardCount=1)
client("s3").create_bucket(Bucket="uploads")

# From here on moto checks every request's signature against the keys IAM holds.
reset = urllib.request.Request(
    endpoint + "/moto-api/reset-auth",
    data=b"0",
    headers={"Content-Type": "text/plain"},
    method="POST",
)
urllib.request.urlopen(reset).read()

print(
    json.dumps(
        {
            "access_key": key["AccessKeyId"],
            "secret_key": key["SecretAccessKey"],
            "account": queue_url.rstrip("/").split("/")[-2],
            "queue_url": queue_url,
            "state_machine": state_machine,
        }
    )
)
