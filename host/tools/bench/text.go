package bench

import (
	"encoding/json"
	"strings"
)

// PromptBytes is the size of the benchmark's user prompt.
const PromptBytes = 4096

// promptSource is benign English prose: a community newsletter someone asks
// Claude to summarize. It holds nothing a sanitizer should change (no
// markup, keys, e-mail addresses or phone numbers), so every gateway
// forwards it as is and the comparison measures the work, not a rewrite.
const promptSource = `Please summarize the following newsletter for our volunteers in a few short paragraphs, keeping the dates and the names of the projects.

The spring season at the Riverside Community Garden began with more energy than any year since the garden opened. Forty-two households now tend plots, up from thirty last year, and the waiting list has grown long enough that the steering group has started looking for a second site near the old railway yard. The soil survey there came back clean, and the city has offered a five-year lease at a nominal rent if the group can show a plan for water access and for keeping the paths open to the public during daylight hours.

Most of the work this spring went into the new rain garden along the north fence. Volunteers dug a shallow basin, lined it with gravel and planted native sedges, rushes and flowering perennials that tolerate both standing water and dry spells. The basin now catches the runoff from the tool shed roof and from the sloping lawn, which used to turn the lower beds into a swamp every April. Early observations are encouraging: after the heavy storms in the second week of May, the lower beds drained within a day instead of a week, and the first bees arrived at the flowering plants soon after.

The children's program also grew. On Saturday mornings, a rotating team of parents and retired teachers ran short sessions on seed starting, composting and insect spotting. The most popular activity by far was the worm count, in which small groups dig a square of soil, count the earthworms they find and compare the numbers across different parts of the garden. The results went up on the noticeboard by the gate, and several families said the chart was the first thing their children checked on each visit. The program will continue through the summer, with a break in August when many families travel.

Not everything went to plan. The late frost at the end of April damaged many of the early tomato and pepper seedlings, and a few plot holders lost their entire first planting. The steering group has ordered frost cloth for the shared supply cupboard and will send a reminder when cold nights are forecast next spring. The compost bays also need attention: the middle bay has collapsed on one side, and the wood of the other two is starting to rot. A small working party will rebuild all three bays in June, using reclaimed timber donated by the carpentry workshop on Mill Street.

The harvest festival is planned for the last Sunday in September. As in previous years, there will be a shared lunch, a produce swap, a pumpkin contest for the children and short talks on seed saving and winter cover crops. The group is looking for volunteers to coordinate the lunch, to build a simple stage from pallets and to design a poster that can be put up in the library, the school and the shops along the high street. Anyone who would like to help can sign the sheet on the noticeboard or speak to one of the coordinators during the Saturday work mornings.

Finally, a word of thanks to the many people who made this season possible: the neighbours who lent tools and trailers, the bakery that sends bread for every work morning, the school that stores the festival tables in its basement, and everyone who gave an hour here and there to weed, water, mend and tidy. The garden is a shared effort, and it only works because so many people quietly do a little of the work. The next general meeting will be held on the first Tuesday of July in the library's community room, and everyone is welcome to come, ask questions and share ideas for the second site.

A short note on watering: the two rain barrels by the shed are for everyone, but please close the taps after use, and do not leave hoses running on the lower beds, which stay damp for several days after a storm. The new rota for the shared herb bed is pinned inside the shed door; each household takes one week between May and October. Thank you all, and see you at the garden.`

// Prompt returns the benchmark's user prompt: PromptBytes of benign
// English text, cut on a word boundary and padded with spaces.
func Prompt() string {
	s := promptSource
	if len(s) > PromptBytes {
		s = s[:PromptBytes]
		if i := strings.LastIndexByte(s, ' '); i > 0 {
			s = s[:i]
		}
	}
	return s + strings.Repeat(" ", PromptBytes-len(s))
}

// ReplyText is what the stand-in answers: about 1.3 KB of English, streamed
// in deltas of about three words, the size of a short real summary.
const ReplyText = `The Riverside Community Garden had its busiest spring yet: forty-two households now tend plots, the waiting list is long, and the steering group is exploring a second site near the old railway yard, where the city offers a five-year lease if the group can plan for water access and keep the paths open to the public in daylight.

Volunteers built a rain garden along the north fence, a gravel-lined basin planted with native sedges, rushes and perennials. It now catches runoff from the shed roof and the lawn, and after the May storms the lower beds drained within a day instead of a week. The Saturday children's program grew too, with sessions on seed starting, composting and insect spotting; the worm count was the favourite and will continue through the summer, pausing in August.

Setbacks included a late April frost that killed many tomato and pepper seedlings, so frost cloth has been ordered for the shared cupboard, and the compost bays will be rebuilt in June with reclaimed timber from the Mill Street workshop. The harvest festival is on the last Sunday in September, with a shared lunch, a produce swap, a pumpkin contest and short talks; volunteers are needed for the lunch, a pallet stage and a poster. The next general meeting is on the first Tuesday of July in the library's community room.`

// Model is the model name the benchmark requests.
const Model = "claude-sonnet-5-5"

// RequestBody returns the Messages request the load sends: Prompt as the
// only user message, streaming or not.
func RequestBody(stream bool) []byte {
	body := map[string]any{
		"model":      Model,
		"max_tokens": 1024,
		"messages":   []map[string]any{{"role": "user", "content": Prompt()}},
	}
	if stream {
		body["stream"] = true
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic("bench: encoding the request body: " + err.Error()) // a fixed literal: cannot fail
	}
	return b
}
