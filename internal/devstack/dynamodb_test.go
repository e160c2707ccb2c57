package devstack

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/logging"
)

// TestStateTableAnswersCarryTheirChecksum: through the stack, DynamoDB
// answers carry the X-Amz-Crc32 header DynamoDB sends, so the SDK checks
// them without warning of a mismatch on each (kumo sends none).
func TestStateTableAnswersCarryTheirChecksum(t *testing.T) {
	s, err := Start(t.Context(), Options{Queue: "devstack-ddb-checksum"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var (
		mu       sync.Mutex
		warnings []string
	)
	cfg := s.AWSConfig()
	cfg.Logger = logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		mu.Lock()
		defer mu.Unlock()
		warnings = append(warnings, fmt.Sprintf(format, v...))
	})
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(s.SQSURL) })
	if _, err := db.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(s.StateTable)}); err != nil {
		t.Fatal(err)
	}
	key := map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "x"}, "sk": &ddbtypes.AttributeValueMemberS{Value: "y"}}
	if _, err := db.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(s.StateTable), Key: key}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, w := range warnings {
		if strings.Contains(w, "checksum") {
			t.Errorf("SDK warning: %s", w)
		}
	}
}
