package devstack

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func TestStackStarts(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Options{Queue: "devstack-test", Engagements: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	attrs, err := s.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(s.QueueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameRedrivePolicy}})
	if err != nil {
		t.Fatal(err)
	}
	if p := attrs.Attributes["RedrivePolicy"]; !strings.Contains(p, "devstack-test-dlq") || !strings.Contains(p, "25") {
		t.Errorf("RedrivePolicy: got %q, want the DLQ's ARN and maxReceiveCount 25", p)
	}
	if _, ok := s.Sim.Engagement(EngagementID(3)); !ok {
		t.Errorf("engagement %s: not created", EngagementID(3))
	}
	if _, err := s.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.QueueURL), MessageBody: aws.String("{}")}); err != nil {
		t.Errorf("send through the proxy: %v", err)
	}
	env := strings.Join(s.Env(), "\n")
	for _, want := range []string{"PCSYNC_QUEUE_URL=", "AWS_ENDPOINT_URL_SQS=" + s.SQSURL, "AWS_ENDPOINT_URL_PARTNERCENTRAL_SELLING=" + s.PCURL} {
		if !strings.Contains(env, want) {
			t.Errorf("Env: got %q, want a line %q", env, want)
		}
	}
}
