-- A message's template context keeps what the citizen wrote sealed only (`sealed_title`,
-- `sealed_reason`: opened when the message is rendered, never stored opened). Contexts
-- stored before kept the opened text beside its sealed copy (`title` beside
-- `sealed_title`): those opened copies go.
UPDATE notifications
SET context = jsonb_set(
    context,
    '{data}',
    (context -> 'data') - ARRAY(
        SELECT substr(name, length('sealed_') + 1)
        FROM jsonb_object_keys(context -> 'data') AS name
        WHERE name LIKE 'sealed\_%'
    )
)
WHERE jsonb_typeof(context -> 'data') = 'object'
  AND EXISTS (SELECT 1 FROM jsonb_object_keys(context -> 'data') AS name WHERE name LIKE 'sealed\_%');
