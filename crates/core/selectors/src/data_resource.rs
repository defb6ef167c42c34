//! The three resource types basic event selectors accept, and which ARN values
//! each accepts and selects (AWS DataResource documentation).

/// A resource type usable in a basic selector's `DataResources`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BasicDataType {
    S3Object,
    LambdaFunction,
    DynamoDbTable,
}

/// How one `DataResources.Values` entry selects resource ARNs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DataValue<'a> {
    /// `arn:aws:s3` style: every resource of the type in that partition.
    AllOfType(&'a str),
    /// `arn:aws:s3:::bucket/prefix`: every object whose ARN starts with the value.
    Prefix(&'a str),
    /// A Lambda function or DynamoDB table ARN: that resource only.
    Exact(&'a str),
}

impl BasicDataType {
    pub(crate) const ALL: [BasicDataType; 3] =
        [Self::S3Object, Self::LambdaFunction, Self::DynamoDbTable];

    pub(crate) fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|candidate| candidate.as_str() == value)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::S3Object => "AWS::S3::Object",
            Self::LambdaFunction => "AWS::Lambda::Function",
            Self::DynamoDbTable => "AWS::DynamoDB::Table",
        }
    }

    fn service(self) -> &'static str {
        match self {
            Self::S3Object => "s3",
            Self::LambdaFunction => "lambda",
            Self::DynamoDbTable => "dynamodb",
        }
    }

    /// The accepted value forms, for error messages.
    pub(crate) fn value_forms(self) -> &'static str {
        match self {
            Self::S3Object => {
                "arn:aws:s3 (all objects), arn:aws:s3:::bucket/ (one bucket) or arn:aws:s3:::bucket/prefix"
            }
            Self::LambdaFunction => {
                "arn:aws:lambda (all functions) or a function ARN such as arn:aws:lambda:us-east-1:111122223333:function:name"
            }
            Self::DynamoDbTable => {
                "arn:aws:dynamodb (all tables) or a table ARN such as arn:aws:dynamodb:us-east-1:111122223333:table/name"
            }
        }
    }

    /// Classifies a value, or `None` when AWS would answer
    /// "Value ... for DataResources.Values is invalid".
    pub(crate) fn classify(self, value: &str) -> Option<DataValue<'_>> {
        let parts: Vec<&str> = value.splitn(6, ':').collect();
        let [arn, partition, service, rest @ ..] = parts.as_slice() else {
            return None;
        };
        if *arn != "arn" || !is_partition(partition) || *service != self.service() {
            return None;
        }
        let [region, account, resource] = rest else {
            return rest.is_empty().then_some(DataValue::AllOfType(value));
        };
        match self {
            Self::S3Object => {
                (region.is_empty() && account.is_empty() && is_s3_object_prefix(resource))
                    .then_some(DataValue::Prefix(value))
            }
            Self::LambdaFunction => {
                (is_region(region) && is_account(account) && is_function_resource(resource))
                    .then_some(DataValue::Exact(value))
            }
            Self::DynamoDbTable => {
                (is_region(region) && is_account(account) && is_table_resource(resource))
                    .then_some(DataValue::Exact(value))
            }
        }
    }
}

impl DataValue<'_> {
    /// Whether a resource ARN of the value's type is selected.
    pub(crate) fn selects(self, resource_arn: &str) -> bool {
        match self {
            Self::AllOfType(prefix) => resource_arn
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(':')),
            Self::Prefix(prefix) => resource_arn.starts_with(prefix),
            // "Lambda function ARNs are exact": helloworld does not select helloworld2.
            // A table also selects its sub-resources (table/name/stream/..., table/name/index/...).
            Self::Exact(exact) => {
                resource_arn == exact
                    || resource_arn
                        .strip_prefix(exact)
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        }
    }
}

fn is_partition(value: &str) -> bool {
    value.starts_with("aws")
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_region(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_account(value: &str) -> bool {
    value.len() == 12 && value.chars().all(|c| c.is_ascii_digit())
}

/// `bucket/` or `bucket/prefix`: a bucket name (legacy names allowed), then a slash,
/// then any object key prefix. `arn:aws:s3:::bucket` without the slash is refused by AWS.
fn is_s3_object_prefix(resource: &str) -> bool {
    let Some((bucket, _key_prefix)) = resource.split_once('/') else {
        return false;
    };
    (3..=255).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// `function:name` or `function:name:qualifier` (version or alias).
fn is_function_resource(resource: &str) -> bool {
    let Some(rest) = resource.strip_prefix("function:") else {
        return false;
    };
    let (name, qualifier) = match rest.split_once(':') {
        Some((name, qualifier)) => (name, Some(qualifier)),
        None => (rest, None),
    };
    let name_ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    let qualifier_ok = qualifier.is_none_or(|q| {
        (1..=128).contains(&q.len())
            && q.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$'))
    });
    name_ok && qualifier_ok
}

/// `table/name`, with a DynamoDB table name.
fn is_table_resource(resource: &str) -> bool {
    let Some(name) = resource.strip_prefix("table/") else {
        return false;
    };
    (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::BasicDataType::*;
    use super::*;

    #[test]
    fn accepted_values_and_their_meaning() {
        let table = [
            (S3Object, "arn:aws:s3", DataValue::AllOfType("arn:aws:s3")),
            (
                S3Object,
                "arn:aws-cn:s3",
                DataValue::AllOfType("arn:aws-cn:s3"),
            ),
            (
                S3Object,
                "arn:aws:s3:::bucket/",
                DataValue::Prefix("arn:aws:s3:::bucket/"),
            ),
            (
                S3Object,
                "arn:aws:s3:::bucket/images/2024",
                DataValue::Prefix("arn:aws:s3:::bucket/images/2024"),
            ),
            (
                S3Object,
                "arn:aws-us-gov:s3:::my.bucket-1/",
                DataValue::Prefix("arn:aws-us-gov:s3:::my.bucket-1/"),
            ),
            (
                S3Object,
                "arn:aws:s3:::bucket/*",
                DataValue::Prefix("arn:aws:s3:::bucket/*"),
            ),
            (
                LambdaFunction,
                "arn:aws:lambda",
                DataValue::AllOfType("arn:aws:lambda"),
            ),
            (
                LambdaFunction,
                "arn:aws:lambda:us-west-2:111111111111:function:helloworld",
                DataValue::Exact("arn:aws:lambda:us-west-2:111111111111:function:helloworld"),
            ),
            (
                LambdaFunction,
                "arn:aws:lambda:us-west-2:111111111111:function:hello:prod",
                DataValue::Exact("arn:aws:lambda:us-west-2:111111111111:function:hello:prod"),
            ),
            (
                DynamoDbTable,
                "arn:aws:dynamodb",
                DataValue::AllOfType("arn:aws:dynamodb"),
            ),
            (
                DynamoDbTable,
                "arn:aws:dynamodb:eu-west-1:111111111111:table/Orders",
                DataValue::Exact("arn:aws:dynamodb:eu-west-1:111111111111:table/Orders"),
            ),
        ];
        for (ty, value, expected) in table {
            assert_eq!(ty.classify(value), Some(expected), "{ty:?} {value}");
        }
    }

    #[test]
    fn refused_values() {
        let table = [
            (S3Object, "arn:aws:s3:::*"),
            (S3Object, "arn:aws:s3:::bucket"),
            (S3Object, "arn:aws:s3:::cg-*/*"),
            (S3Object, "arn:aws:s3:::"),
            (S3Object, "arn:aws:s3:us-east-1:111111111111:bucket/"),
            (S3Object, "arn:aws:lambda"),
            (S3Object, "arn:aws:s3:"),
            (S3Object, "s3://bucket/"),
            (S3Object, "arn:AWS:s3"),
            (S3Object, ""),
            (LambdaFunction, "arn:aws:lambda:*"),
            (
                LambdaFunction,
                "arn:aws:lambda:us-east-1:111111111111:function",
            ),
            (
                LambdaFunction,
                "arn:aws:lambda:us-east-1:111111111111:function:",
            ),
            (LambdaFunction, "arn:aws:lambda:us-east-1:1111:function:f"),
            (LambdaFunction, "arn:aws:lambda::111111111111:function:f"),
            (
                LambdaFunction,
                "arn:aws:lambda:us-east-1:111111111111:function:f*",
            ),
            (
                DynamoDbTable,
                "arn:aws:dynamodb:us-east-1:111111111111:table/",
            ),
            (
                DynamoDbTable,
                "arn:aws:dynamodb:us-east-1:111111111111:table",
            ),
            (
                DynamoDbTable,
                "arn:aws:dynamodb:us-east-1:111111111111:stream/x",
            ),
            (DynamoDbTable, "arn:aws:s3"),
        ];
        for (ty, value) in table {
            assert_eq!(ty.classify(value), None, "{ty:?} {value}");
        }
    }

    #[test]
    fn selection_of_resource_arns() {
        let all_s3 = DataValue::AllOfType("arn:aws:s3");
        assert!(all_s3.selects("arn:aws:s3:::any/key"));
        assert!(!all_s3.selects("arn:aws-cn:s3:::any/key"));
        assert!(!all_s3.selects("arn:aws:s3-outposts:us-east-1:1:x"));

        let prefix = DataValue::Prefix("arn:aws:s3:::bucket/logs");
        assert!(prefix.selects("arn:aws:s3:::bucket/logs/a.txt"));
        assert!(prefix.selects("arn:aws:s3:::bucket/logs2"));
        assert!(!prefix.selects("arn:aws:s3:::bucket/data"));
        assert!(!prefix.selects("arn:aws:s3:::bucket2/logs"));

        let function =
            DataValue::Exact("arn:aws:lambda:us-west-2:111111111111:function:helloworld");
        assert!(function.selects("arn:aws:lambda:us-west-2:111111111111:function:helloworld"));
        assert!(!function.selects("arn:aws:lambda:us-west-2:111111111111:function:helloworld2"));

        let table = DataValue::Exact("arn:aws:dynamodb:eu-west-1:111111111111:table/Orders");
        assert!(table.selects("arn:aws:dynamodb:eu-west-1:111111111111:table/Orders"));
        assert!(table.selects("arn:aws:dynamodb:eu-west-1:111111111111:table/Orders/index/ByDate"));
        assert!(!table.selects("arn:aws:dynamodb:eu-west-1:111111111111:table/Orders2"));
    }

    #[test]
    fn type_names_round_trip() {
        for ty in BasicDataType::ALL {
            assert_eq!(BasicDataType::parse(ty.as_str()), Some(ty));
        }
        assert_eq!(BasicDataType::parse("AWS::SNS::Topic"), None);
        assert_eq!(BasicDataType::parse("aws::s3::object"), None);
    }
}
