// A Lambda authorizer returning an IAM policy, written as for AWS Lambda's Node.js runtime and
// built for Edgeway with plugin-sdk/lambda/js/build.sh. It behaves as the Rust
// plugins/lambda-authorizer does (see there).

const policy = (effect, resource) => ({
  Version: '2012-10-17',
  Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: resource }],
});

export const handler = async (event) => {
  const token = event.authorizationToken ?? (event.headers || {}).authorization ?? '';
  const methodArn = event.methodArn || '';
  const cut = methodArn.lastIndexOf(':');
  const prefix = methodArn.slice(0, cut);
  const apiStage = methodArn.slice(cut + 1).split('/').slice(0, 2).join('/');
  switch (token) {
    case 'allow':
      return {
        principalId: 'user-allow',
        policyDocument: policy('Allow', `${prefix}:${apiStage}/GET/*`),
        context: { tier: 'gold', count: 3, vip: true, arn: methodArn },
        usageIdentifierKey: 'k-lambda',
      };
    case 'deny':
      return { principalId: 'user-deny', policyDocument: policy('Deny', methodArn) };
    case 'unauthorized':
      throw new Error('Unauthorized');
    case 'broken':
      return {
        principalId: 'user-broken',
        policyDocument: { Statement: [{ Action: 'execute-api:Invoke', Resource: '*' }] },
      };
    default:
      throw new Error('invalid token');
  }
};
