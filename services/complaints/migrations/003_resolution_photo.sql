-- The photo of the finished work an OPD resolves a complaint with (an attachment of the
-- complaint, labelled 'resolution'); cleared when the reporter reopens it as not fixed.
ALTER TABLE complaints ADD COLUMN resolution_photo uuid;
