package partnercentral

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

const userAgent = "pcsync (partnercentral client; awsJson1_0)"

// invoke sends one signed awsJson1_0 call and decodes its answer into out.
// It makes a single attempt.
func (c *Client) invoke(ctx context.Context, op string, in, out any, optFns []func(*Options)) error {
	o := c.options
	ep := c.endpoint
	if len(optFns) > 0 {
		for _, fn := range optFns {
			fn(&o)
		}
		ep = o.resolveEndpoint()
	}
	err := c.do(ctx, &o, ep, op, in, out)
	if err != nil {
		return &smithy.OperationError{ServiceID: ServiceID, OperationName: op, Err: err}
	}
	return nil
}

func (c *Client) do(ctx context.Context, o *Options, ep resolvedEndpoint, op string, in, out any) error {
	if ep.err != nil {
		return ep.err
	}
	u, err := url.Parse(ep.url)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("invalid endpoint %q: want scheme://host[:port]", ep.url)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	if o.Credentials == nil {
		return errors.New("no credentials configured")
	}
	body, err := json.Marshal(in)
	if err != nil {
		return &smithy.SerializationError{Err: err}
	}

	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	creds, err := o.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("retrieve credentials: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", TargetPrefix+op)
	req.Header.Set("User-Agent", userAgent)
	sum := sha256.Sum256(body)
	if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), SigningName, ep.signingRegion, o.Now()); err != nil {
		return fmt.Errorf("sign request: %w", err)
	}

	resp, err := o.HTTPClient.Do(req)
	if err != nil {
		return sendError(ctx, err)
	}
	defer resp.Body.Close()
	payload, err := readCapped(resp.Body, o.MaxResponseBytes)
	if err != nil {
		err = sendError(ctx, err)
		if resp.StatusCode/100 != 2 {
			return responseError(resp, err)
		}
		return err
	}
	if resp.StatusCode/100 != 2 {
		return responseError(resp, decodeError(resp, payload))
	}
	if err := json.Unmarshal(payload, out); err != nil {
		return responseError(resp, &smithy.DeserializationError{Err: err, Snapshot: snapshot(payload)})
	}
	return nil
}

// sendError marks a failure to send or to receive, telling a cancelled or
// timed-out context apart, as the AWS SDK does.
func sendError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return &aws.RequestCanceledError{Err: err}
	}
	return &smithyhttp.RequestSendError{Err: err}
}

func responseError(resp *http.Response, err error) error {
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: err},
		RequestID:     resp.Header.Get("X-Amzn-RequestId"),
	}
}

// ErrResponseTooLarge is returned when a response body is over the cap.
var ErrResponseTooLarge = errors.New("response body exceeds the size limit")

func readCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w of %d bytes", ErrResponseTooLarge, limit)
	}
	return b, nil
}

func snapshot(b []byte) []byte {
	const max = 1024
	if len(b) > max {
		b = b[:max]
	}
	return append([]byte(nil), b...)
}
